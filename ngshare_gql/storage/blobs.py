"""Content-addressed blob stores: each distinct content is stored once, by sha256.

The :class:`~ngshare_gql.models.Blob` table is the index of what is stored,
whatever the backend; the backend holds the bytes.  ``sql`` keeps them in the
database in 1 MiB chunks (the embedded default), ``filesystem`` in a sharded
directory with atomic renames, ``s3`` in a bucket (see :mod:`.s3`).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator

import sqlalchemy as sa
from flask import Response, send_file

from ngshare_gql.extensions import db
from ngshare_gql.models import Blob, BlobChunk
from ngshare_gql.storage.staging import StagedFile

CHUNK = 1024 * 1024
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def _insert_ignore(table: sa.Table, rows: dict) -> sa.Executable:
    """``INSERT ... ON CONFLICT DO NOTHING`` for SQLite and PostgreSQL alike."""
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).values(**rows).on_conflict_do_nothing()


class BlobStore:
    """Shared logic: the Blob index and streamed download responses."""

    name = "base"

    def has(self, sha256: str) -> bool:
        return db.session.get(Blob, sha256) is not None

    def missing(self, hashes: set[str]) -> set[str]:
        if not hashes:
            return set()
        present = db.session.scalars(sa.select(Blob.sha256).where(Blob.sha256.in_(hashes)))
        return hashes - set(present)

    def put(self, staged: StagedFile) -> None:
        """Store a staged upload under its sha256 (a no-op if already stored)."""
        staged.finish()
        self._write(staged)
        db.session.execute(
            _insert_ignore(Blob.__table__, {"sha256": staged.sha256, "size": staged.size})
        )

    def response(self, sha256: str, size: int, filename: str) -> Response:
        response = Response(self.iter_bytes(sha256), mimetype="application/octet-stream")
        response.content_length = size
        return response

    def iter_bytes(self, sha256: str) -> Iterator[bytes]:
        raise NotImplementedError

    def delete(self, sha256: str) -> None:
        """Forget a blob; the caller has made sure nothing references it."""
        db.session.execute(sa.delete(Blob).where(Blob.sha256 == sha256))
        self._delete_bytes(sha256)

    def check(self) -> None:
        """Raise if the store cannot be used (for ``/healthz``)."""

    def _write(self, staged: StagedFile) -> None:
        raise NotImplementedError

    def _delete_bytes(self, sha256: str) -> None:
        raise NotImplementedError


class SqlBlobStore(BlobStore):
    """Bytes in the database itself, in bounded chunks: nothing else to run."""

    name = "sql"

    def put(self, staged: StagedFile) -> None:
        staged.finish()
        inserted = db.session.execute(
            _insert_ignore(Blob.__table__, {"sha256": staged.sha256, "size": staged.size})
        ).rowcount
        if not inserted:
            return
        with open(staged.path, "rb") as source:
            for seq, chunk in enumerate(iter(lambda: source.read(CHUNK), b"")):
                db.session.execute(
                    sa.insert(BlobChunk).values(sha256=staged.sha256, seq=seq, data=chunk)
                )

    def iter_bytes(self, sha256: str) -> Iterator[bytes]:
        # A connection of its own: the response streams after the request's session ends.
        return self._chunks(db.engine, sha256)

    @staticmethod
    def _chunks(engine: sa.Engine, sha256: str) -> Iterator[bytes]:
        seq = 0
        query = sa.select(BlobChunk.data).where(
            BlobChunk.sha256 == sha256, BlobChunk.seq == sa.bindparam("seq")
        )
        with engine.connect() as connection:
            while True:
                data = connection.execute(query, {"seq": seq}).scalar()
                if data is None:
                    return
                yield bytes(data)
                seq += 1

    def _delete_bytes(self, sha256: str) -> None:
        db.session.execute(sa.delete(BlobChunk).where(BlobChunk.sha256 == sha256))

    def check(self) -> None:
        db.session.execute(sa.select(BlobChunk.seq).limit(1))


class FilesystemBlobStore(BlobStore):
    """Bytes as files under ``root/ab/cd/<sha256>``, written by atomic rename."""

    name = "filesystem"

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.staging = os.path.join(self.root, "tmp")
        os.makedirs(self.staging, exist_ok=True)

    def path_of(self, sha256: str) -> str:
        if not SHA256_RE.match(sha256):
            raise ValueError("not a sha256 hex digest")
        return os.path.join(self.root, sha256[:2], sha256[2:4], sha256)

    def _write(self, staged: StagedFile) -> None:
        target = self.path_of(staged.sha256)
        if os.path.exists(target):
            return
        os.makedirs(os.path.dirname(target), exist_ok=True)
        staged.close()
        try:
            os.replace(staged.path, target)
        except OSError:  # another file system: copy, then rename into place
            tmp = target + ".part"
            with open(staged.path, "rb") as src, open(tmp, "wb") as dst:
                for chunk in iter(lambda: src.read(CHUNK), b""):
                    dst.write(chunk)
            os.replace(tmp, target)

    def response(self, sha256: str, size: int, filename: str) -> Response:
        return send_file(
            self.path_of(sha256),
            mimetype="application/octet-stream",
            etag=False,
            conditional=False,
            max_age=0,
        )

    def iter_bytes(self, sha256: str) -> Iterator[bytes]:
        with open(self.path_of(sha256), "rb") as source:
            yield from iter(lambda: source.read(CHUNK), b"")

    def _delete_bytes(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path_of(sha256))

    def check(self) -> None:
        probe = os.path.join(self.staging, ".healthz")
        with open(probe, "wb") as f:
            f.write(b"ok")
        os.unlink(probe)
