"""Uploads land in a staging file, hashed as the bytes stream in.

Werkzeug's multipart parser writes each uploaded part to the file object that
:meth:`StagingRequest._get_file_stream` returns.  Ours computes sha256 and size
on the way and enforces the per-file limit, so the bytes are read from the
socket once, hashed once, written once, and never held whole in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from typing import IO

from flask import Request, current_app, g
from werkzeug.exceptions import RequestEntityTooLarge


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


def discard_staged_files(_exc: BaseException | None = None) -> None:
    """Remove whatever staging files this request left (teardown hook)."""
    for staged in g.pop("staged_files", []):
        staged.discard()
