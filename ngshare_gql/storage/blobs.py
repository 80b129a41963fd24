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
from datetime import datetime, timezone

import sqlalchemy as sa
from flask import Response, send_file

from ngshare_gql.extensions import db, insert_ignore
from ngshare_gql.models import Blob, BlobChunk
from ngshare_gql.storage.staging import StagedFile

CHUNK = 1024 * 1024
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class BlobStore:
    """Shared logic: the Blob index, the locking protocol and streamed downloads.

    Garbage collection (:mod:`.gc`) must never remove a blob that a transaction is
    about to reference.  So every transaction that adds files first *locks* the
    Blob rows of their contents (:meth:`lock`, :meth:`put`) and keeps the locks
    until it commits; the collector only removes rows it could lock itself and
    re-checks for references after locking.  PostgreSQL: ``FOR KEY SHARE`` here,
    ``FOR UPDATE SKIP LOCKED`` there.  SQLite: both take the database's single
    write lock.  The bytes are written *after* the row is locked, and the collector
    deletes bytes *before* it commits, so a blob whose row is held has its bytes.
    """

    name = "base"

    def has(self, sha256: str) -> bool:
        return db.session.get(Blob, sha256) is not None

    def missing(self, hashes: set[str]) -> set[str]:
        if not hashes:
            return set()
        present = db.session.scalars(sa.select(Blob.sha256).where(Blob.sha256.in_(hashes)))
        return hashes - set(present)

    def lock(self, hashes: set[str]) -> set[str]:
        """Hold the Blob rows of ``hashes`` until commit; returns those that are stored."""
        wanted = sorted(hashes)
        if not wanted:
            return set()
        query = sa.select(Blob.sha256).where(Blob.sha256.in_(wanted)).order_by(Blob.sha256)
        if db.engine.dialect.name == "postgresql":
            query = query.with_for_update(read=True, key_share=True)
        else:  # any write takes SQLite's database lock, held until commit
            db.session.execute(
                sa.update(Blob).where(Blob.sha256.in_(wanted)).values(size=Blob.size),
                execution_options={"synchronize_session": False},
            )
        return set(db.session.scalars(query))

    def put(self, staged: StagedFile) -> None:
        """Store a staged upload under its sha256 and lock its row until commit."""
        staged.finish()
        for _attempt in range(5):
            inserted = db.session.execute(
                insert_ignore(
                    Blob.__table__, {"sha256": staged.sha256, "size": staged.size}
                ).returning(Blob.sha256)
            ).first()
            # A row this transaction inserted is already held until commit. (RETURNING
            # says whether it did: through psycopg2 the rowcount here reads -1.)
            if inserted is not None or self.lock({staged.sha256}):
                break
            # The collector removed the row between our insert and lock: insert again.
        else:
            raise RuntimeError(f"could not lock blob {staged.sha256}")
        if not self._has_bytes(staged.sha256, staged.size):
            self._write(staged)

    def response(self, sha256: str, size: int, filename: str) -> Response:
        response = Response(self.iter_bytes(sha256), mimetype="application/octet-stream")
        response.content_length = size
        return response

    def iter_bytes(self, sha256: str) -> Iterator[bytes]:
        raise NotImplementedError

    def delete_bytes(self, hashes: list[str]) -> None:
        """Remove the bytes of blobs whose rows the collector is deleting."""
        for sha256 in hashes:
            self._delete_bytes(sha256)

    def check(self) -> None:
        """Raise if the store cannot be used (for ``/healthz``)."""

    def iter_stored(self) -> Iterator[tuple[str, int, datetime]]:
        """(sha256, size, last modified in UTC) of every content the backend holds,
        indexed or not; the ``sql`` store's bytes cannot outlive their index row."""
        return iter(())

    def _has_bytes(self, sha256: str, size: int) -> bool:
        raise NotImplementedError

    def _write(self, staged: StagedFile) -> None:
        raise NotImplementedError

    def _delete_bytes(self, sha256: str) -> None:
        raise NotImplementedError


class SqlBlobStore(BlobStore):
    """Bytes in the database itself, in bounded chunks: nothing else to run."""

    name = "sql"

    def _has_bytes(self, sha256: str, size: int) -> bool:
        stored = db.session.scalar(
            sa.select(sa.func.count()).select_from(BlobChunk).where(BlobChunk.sha256 == sha256)
        )
        return stored == -(-size // CHUNK)

    def _write(self, staged: StagedFile) -> None:
        self._delete_bytes(staged.sha256)
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

    def _has_bytes(self, sha256: str, size: int) -> bool:
        return os.path.exists(self.path_of(sha256))

    def _write(self, staged: StagedFile) -> None:
        target = self.path_of(staged.sha256)
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

    def iter_stored(self) -> Iterator[tuple[str, int, datetime]]:
        for directory, _dirs, names in os.walk(self.root):
            if directory.startswith(self.staging):
                continue
            for name in names:
                if SHA256_RE.match(name):
                    with contextlib.suppress(FileNotFoundError):
                        info = os.stat(os.path.join(directory, name))
                        modified = datetime.fromtimestamp(info.st_mtime, timezone.utc)
                        yield name, info.st_size, modified.replace(tzinfo=None)

    def check(self) -> None:
        probe = os.path.join(self.staging, ".healthz")
        with open(probe, "wb") as f:
            f.write(b"ok")
        os.unlink(probe)
