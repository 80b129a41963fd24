"""Staged uploads hashed by a helper thread: same bytes, same hash, same errors."""

from __future__ import annotations

import hashlib
import os

import pytest
from werkzeug.exceptions import RequestEntityTooLarge

from ngshare_gql.storage.staging import StagedFile

BIG = StagedFile.HASH_BEHIND_FROM


def test_mixed_small_and_large_writes_keep_order_and_hash(tmp_path):
    staged = StagedFile(str(tmp_path), max_size=1 << 30)
    pieces = [b"a" * 10, os.urandom(BIG), b"b" * 100, memoryview(os.urandom(3 * BIG + 7)), b"c"]
    for piece in pieces:
        assert staged.write(piece) == len(piece)
    expected = b"".join(bytes(p) for p in pieces)
    assert staged.sha256 == hashlib.sha256(expected).hexdigest()
    assert staged.size == len(expected)
    staged.seek(0)
    assert staged.read() == expected
    staged.finish()
    with open(staged.path, "rb") as f:
        assert f.read() == expected
    assert staged._helper is None  # joined, no thread left behind
    staged.discard()
    assert not os.path.exists(staged.path)


def test_a_writer_may_reuse_its_buffer_as_soon_as_write_returns(tmp_path):
    """The helper hashes what is on file, not the caller's buffer: the parser
    refills one buffer in place while earlier megabytes are still being hashed."""
    staged = StagedFile(str(tmp_path), max_size=1 << 30)
    chunks = [os.urandom(BIG) for _ in range(40)]
    buffer = bytearray(BIG)
    for chunk in chunks:
        buffer[:] = chunk  # much faster than hashing it: the helper is behind
        staged.write(memoryview(buffer))
    expected = hashlib.sha256(b"".join(chunks))
    assert staged.sha256 == expected.hexdigest()
    staged.discard()


def test_a_file_system_that_cannot_map_files_still_gets_hashed(tmp_path, monkeypatch):
    """Where mmap is refused the helper reads the bytes back, short reads included."""
    real_pread = os.pread

    def refuse(*args, **kwargs):
        raise OSError(19, "No such device")  # what mmap says where mapping is unsupported

    monkeypatch.setattr("ngshare_gql.storage.staging.mmap.mmap", refuse)
    monkeypatch.setattr(
        "ngshare_gql.storage.staging.os.pread",
        lambda fd, n, offset: real_pread(fd, min(n, 100_000), offset),  # as FUSE may
    )
    staged = StagedFile(str(tmp_path), max_size=1 << 30)
    data = os.urandom(3 * StagedFile.WINDOW + 12345)
    for i in range(0, len(data), BIG):
        staged.write(data[i : i + BIG])
    assert staged.sha256 == hashlib.sha256(data).hexdigest()
    staged.discard()


def test_size_limit_holds_for_large_writes(tmp_path):
    staged = StagedFile(str(tmp_path), max_size=2 * BIG)
    staged.write(os.urandom(BIG))
    staged.write(os.urandom(BIG))
    with pytest.raises(RequestEntityTooLarge):
        staged.write(b"x")
    staged.discard()
    assert not os.path.exists(staged.path)


class FullDisk:
    """A file whose second write fails, as on a full disk."""

    def __init__(self, real) -> None:
        self.real, self.calls = real, 0

    def write(self, data) -> int:
        self.calls += 1
        if self.calls == 2:
            raise OSError(28, "No space left on device")
        return self.real.write(data)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_a_disk_failure_is_raised_by_the_write_and_leaves_nothing(tmp_path):
    staged = StagedFile(str(tmp_path), max_size=1 << 30)
    staged._file = FullDisk(staged._file)
    staged.write(os.urandom(BIG))
    with pytest.raises(OSError, match="No space left"):
        staged.write(os.urandom(BIG))
    staged.discard()
    assert not os.path.exists(staged.path)


class BrokenHash:
    """A digest that fails on its second update (the helper thread's work)."""

    def __init__(self) -> None:
        self.calls = 0

    def update(self, data) -> None:
        self.calls += 1
        if self.calls == 2:
            raise MemoryError("hash failed")


def test_a_failure_in_the_helper_reaches_the_request_thread(tmp_path):
    staged = StagedFile(str(tmp_path), max_size=1 << 30)
    staged._hash = BrokenHash()
    with pytest.raises(MemoryError, match="hash failed"):
        for _ in range(20):  # fails on a later write, or at the latest when settled
            staged.write(os.urandom(BIG))
        staged.finish()
    with pytest.raises(MemoryError):
        _ = staged.sha256
    staged.discard()  # cleaning up never raises
    assert not os.path.exists(staged.path)
