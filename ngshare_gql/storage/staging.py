"""Uploads land in a staging file, hashed as the bytes stream in.

The multipart parser (:mod:`.multipart`, werkzeug's for other bodies) writes
each uploaded part to the file object that :meth:`StagingRequest._get_file_stream`
returns.  Ours computes sha256 and size
on the way and enforces the per-file limit, so the bytes are read from the
socket once, hashed once, written once, and never held whole in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from typing import IO

from flask import Request, current_app, g
from werkzeug.datastructures import Headers
from werkzeug.exceptions import RequestEntityTooLarge

from ngshare_gql.storage import multipart


class StagedFile:
    """A writable temp file that knows the sha256 and size of what was written."""

    def __init__(self, directory: str, max_size: int) -> None:
        fd, self.path = tempfile.mkstemp(prefix="upload-", dir=directory)
        self._file: IO[bytes] = os.fdopen(fd, "w+b")
        self._hash = hashlib.sha256()
        self.size = 0
        self.max_size = max_size
        self._sha256: str | None = None

    # --- the file protocol werkzeug uses -------------------------------------------
    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.max_size:
            raise RequestEntityTooLarge(f"a file is larger than the limit of {self.max_size} bytes")
        self._hash.update(data)
        return self._file.write(data)

    def read(self, n: int = -1) -> bytes:
        return self._file.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    @property
    def closed(self) -> bool:
        return self._file.closed

    def __iter__(self):
        return iter(lambda: self._file.read(1024 * 1024), b"")

    # --- what the blob store needs ---------------------------------------------------
    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = self._hash.hexdigest()
        return self._sha256

    def finish(self) -> None:
        """Flush to disk so the path can be read, renamed or uploaded."""
        if not self._file.closed:
            self._file.flush()

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class StagingRequest(Request):
    """A request whose uploaded files are :class:`StagedFile` objects."""

    # Form fields (the GraphQL ``operations`` and ``map`` parts) stay small.
    max_form_memory_size = 16 * 1024 * 1024

    def _load_form_data(self) -> None:
        """Parse multipart bodies with :mod:`.multipart`; anything else as werkzeug does."""
        if "form" in self.__dict__:
            return
        boundary = self.mimetype_params.get("boundary", "")
        if self.mimetype != "multipart/form-data" or not boundary or self.shallow:
            super()._load_form_data()
            return
        stream = self._get_stream_for_parsing()
        try:
            fields, files = multipart.parse(
                stream.read,
                boundary.encode("ascii"),
                self._open_part,
                self.max_form_memory_size,
                self.max_form_parts,
            )
        except ValueError:  # malformed: an empty form, like werkzeug's silent parser
            fields, files = [], []
        d = self.__dict__
        d["stream"] = stream
        d["form"] = self.parameter_storage_class(fields)
        d["files"] = self.parameter_storage_class(files)

    def _open_part(
        self, name: str, filename: str, content_type: str | None, headers: Headers
    ) -> IO[bytes]:
        try:
            content_length = int(headers.get("content-length", 0))
        except ValueError:
            content_length = 0
        return self._get_file_stream(self.content_length, content_type, filename, content_length)

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        settings = current_app.extensions["ngshare"].settings
        staged = StagedFile(current_app.extensions["ngshare"].staging_dir, settings.max_file_size)
        g.setdefault("staged_files", []).append(staged)
        return staged  # type: ignore[return-value]


# A staging file untouched this long belongs to no live request: a live upload writes
# to it continually and is stored within seconds of its last byte.
STALE_AFTER = 3600.0


def remove_stale_staging(directory: str, older_than: float = STALE_AFTER) -> int:
    """Delete staging files a killed worker left behind (its teardown never ran);
    run when a worker starts.  Returns how many were removed."""
    removed = 0
    cutoff = time.time() - older_than
    for entry in os.scandir(directory):
        try:
            if entry.name.startswith("upload-") and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:  # another worker got there first
            continue
    return removed


def discard_staged_files(_exc: BaseException | None = None) -> None:
    """Remove whatever staging files this request left (teardown hook)."""
    for staged in g.pop("staged_files", []):
        staged.discard()
