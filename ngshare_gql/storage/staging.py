"""Uploads land in a staging file, hashed as the bytes stream in.

The multipart parser (:mod:`.multipart`, werkzeug's for other bodies) writes
each uploaded part to the file object that :meth:`StagingRequest._get_file_stream`
returns.  Ours computes sha256 and size
on the way and enforces the per-file limit, so the bytes are read from the
socket once, written once, hashed once, and never held whole in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mmap
import os
import queue
import re
import tempfile
import threading
import time
from typing import IO

from flask import Request, current_app, g
from werkzeug.datastructures import Headers
from werkzeug.exceptions import RequestEntityTooLarge

from ngshare_gql.errors import ServiceUnavailable
from ngshare_gql.storage import multipart
from ngshare_gql.storage.body import body_readinto

# File systems whose reads can fail after a write succeeded: a server gone, a soft mount
# timing out (these, and every ``fuse*`` type: a FUSE daemon gone).  A failed read of a
# mapped page is a SIGBUS, which ends the worker and every request in it; a failed
# ``preadv`` is one upload's OSError.  Network block devices (EBS, RBD, iSCSI) formatted
# ext4 or xfs look local here, and are mapped.
_REMOTE_FILE_SYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "ceph", "9p", "virtiofs", "vboxsf", "lustre", "gpfs",
     "beegfs", "afs", "orangefs", "ocfs2", "gfs2"}
)
_MOUNTINFO_ESCAPE = re.compile(rb"\\([0-7]{3})")
log = logging.getLogger(__name__)


def _mounts(mountinfo: str) -> list[tuple[bytes, str, str]]:
    """(device ``major:minor``, mount point, type) of each line of the mount table, in
    its order.  Fields are split on single spaces only: the kernel escapes space, tab,
    newline and backslash in a mount point (``\\040``…), nothing else."""
    with open(mountinfo, "rb") as f:
        lines = f.read().split(b"\n")
    mounts = []
    for line in lines:
        fields = line.split(b" ")
        if b"-" not in fields[6:]:  # not a mount line (a short one, or the empty last)
            continue
        rest = fields[fields.index(b"-", 6) + 1 :]
        if not rest or not rest[0]:
            continue
        point = _MOUNTINFO_ESCAPE.sub(lambda m: bytes([int(m.group(1), 8)]), fields[4])
        mounts.append((fields[2], os.fsdecode(point), os.fsdecode(rest[0])))
    return mounts


def file_system_type(path: str, mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """The type of the file system ``path`` is on, from the mount table: the mount of
    the path's device, else (a path not there yet, a btrfs subvolume) the last mount on
    the longest mount point that holds it; None where the table can't be read."""
    try:
        mounts = _mounts(mountinfo)
    except OSError:
        return None
    target = os.path.realpath(path)
    try:
        st_dev = os.stat(target).st_dev
        device = f"{os.major(st_dev)}:{os.minor(st_dev)}".encode()
    except OSError:
        device = None
    on_device = [fs_type for dev, _, fs_type in mounts if dev == device]
    if on_device:  # bind mounts of one device share its type
        return on_device[-1]
    found, longest = None, -1
    for _, point, fs_type in mounts:
        inside = point == "/" or target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= longest:
            found, longest = fs_type, len(point)
    return found


def maps_safely(fs_type: str | None) -> bool:
    """Whether staging files on ``fs_type`` may be hashed through a memory map: not on
    network or FUSE file systems (see :data:`_REMOTE_FILE_SYSTEMS`)."""
    if fs_type is None:
        return True
    return fs_type not in _REMOTE_FILE_SYSTEMS and not fs_type.startswith("fuse")


class StagedFile:
    """A writable temp file that knows the sha256 and size of what was written.

    Every write goes to the file at once.  Once an upload is large, a helper thread
    hashes what has been written, reading it back from the page cache through a
    memory map (no copy), while the request thread goes on receiving (hashlib,
    file writes and ``recv`` all release the GIL): an upload takes about the longer
    of hashing and receiving rather than their sum.  With ``mapped=False`` (network
    and FUSE file systems, see :func:`maps_safely`) it copies the bytes back with
    ``preadv`` into a buffer of its own instead: on a local disk that measured about
    4.5% slower (bench/RESULTS.md).  No write keeps its buffer, so the parser reuses
    one.  Methods that need the digest or the finished file wait for the helper first
    and re-raise what it failed with.
    """

    HASH_BEHIND_FROM = 256 * 1024  # bytes in one write that are worth handing over
    WINDOW = 4 * 1024 * 1024  # read back at once by the helper: bounds the memory it holds

    def __init__(self, directory: str, max_size: int, mapped: bool = True) -> None:
        fd, self.path = tempfile.mkstemp(prefix="upload-", dir=directory)
        self._file: IO[bytes] = os.fdopen(fd, "w+b", buffering=0)
        self.mapped = mapped
        self._hash = hashlib.sha256()
        self.size = 0
        self.max_size = max_size
        self._hashed = 0  # bytes of the file hashed so far
        self._sha256: str | None = None
        self._queue: queue.SimpleQueue[int | None] | None = None
        self._helper: threading.Thread | None = None
        self._error: BaseException | None = None
        self._buffer: memoryview | None = None  # for reading back unmapped

    # --- the file protocol the multipart parsers use ---------------------------------
    def write(self, data: bytes | memoryview) -> int:
        n = len(data)
        self.size += n
        if self.size > self.max_size:
            raise RequestEntityTooLarge(f"a file is larger than the limit of {self.max_size} bytes")
        if self._error is not None:
            raise self._error
        written = self._file.write(data)
        if written != n:  # a short write (a signal, a full disk): finish it
            with memoryview(data) as rest:
                while written < n:
                    written += self._file.write(rest[written:])
        if self._queue is None and n < self.HASH_BEHIND_FROM:
            self._hash.update(data)
            self._hashed += n
            return n
        if self._queue is None:
            self._queue = queue.SimpleQueue()
            self._helper = threading.Thread(target=self._hash_behind, name="staging", daemon=True)
            self._helper.start()
        self._queue.put(self.size)
        return n

    def _hash_behind(self) -> None:
        """The helper: hash the file up to each size the request thread reports."""
        assert self._queue is not None
        fd = self._file.fileno()
        while (end := self._queue.get()) is not None:
            if self._error is None:  # after a failure, only empty the queue
                try:
                    self._hash_until(fd, end)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the request thread
                    self._error = exc

    def _hash_until(self, fd: int, end: int) -> None:
        while self._hashed < end:
            start = self._hashed - self._hashed % mmap.ALLOCATIONGRANULARITY
            stop = min(end, start + self.WINDOW)
            if not self.mapped:
                self._hash_read(fd, stop)
                continue
            try:
                mapped = mmap.mmap(fd, stop - start, prot=mmap.PROT_READ, offset=start)
            except OSError:  # a file system that can't map files: read the bytes back
                self.mapped = False
                self._hash_read(fd, stop)
                continue
            with mapped, memoryview(mapped) as view, view[self._hashed - start :] as fresh:
                self._hash.update(fresh)
            self._hashed = stop

    def _hash_read(self, fd: int, stop: int) -> None:
        """Hash up to ``stop`` (at most a window on) copying the bytes back."""
        if self._buffer is None:
            self._buffer = memoryview(bytearray(self.WINDOW))
        while self._hashed < stop:
            n = os.preadv(fd, [self._buffer[: stop - self._hashed]], self._hashed)
            if not n:
                raise OSError(f"staging file {self.path} is shorter than what was written")
            self._hash.update(self._buffer[:n])
            self._hashed += n

    def _settle(self) -> None:
        """Wait until every write is hashed; raise what failed."""
        if self._helper is not None and self._queue is not None:
            self._queue.put(None)
            self._helper.join()
            self._helper = self._queue = None
        if self._error is not None:
            raise self._error

    def read(self, n: int = -1) -> bytes:
        self._settle()
        return self._file.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        self._settle()
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        self._settle()
        return self._file.tell()

    def flush(self) -> None:
        self._settle()

    def close(self) -> None:
        self._settle()
        self._file.close()

    @property
    def closed(self) -> bool:
        return self._file.closed

    def __iter__(self):
        self._settle()
        return iter(lambda: self._file.read(1024 * 1024), b"")

    # --- what the blob store needs ---------------------------------------------------
    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._settle()
            self._sha256 = self._hash.hexdigest()
        return self._sha256

    def finish(self) -> None:
        """Wait for the hash, so the path can be read, renamed or uploaded."""
        self._settle()

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self._settle()
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
                body_readinto(self.environ, stream),
                boundary.encode("ascii"),
                self._open_part,
                self.max_form_memory_size,
                self.max_form_parts,
            )
        except ValueError:  # malformed: an empty form, like werkzeug's silent parser
            fields, files = [], []
        except (ConnectionError, TimeoutError):  # the client's connection, not our disk
            raise
        except OSError as exc:  # the staging folder's disk is full, or a read failed
            log.warning("could not stage an upload: %s", exc)
            raise ServiceUnavailable(
                f"the service could not store the upload ({exc.strerror or exc}); try "
                "again, and tell the service's operator if it happens again"
            ) from exc
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
        services = current_app.extensions["ngshare"]
        staged = StagedFile(
            services.staging_dir, services.settings.max_file_size, services.staging_maps
        )
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
