"""Staged uploads hashed by a helper thread: same bytes, same hash, same errors."""

from __future__ import annotations

import hashlib
import os

import pytest
from werkzeug.exceptions import RequestEntityTooLarge

from ngshare_gql.storage.staging import StagedFile, file_system_type, maps_safely
from tests.conftest import RELEASE, file_inputs

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
    real_preadv = os.preadv

    def refuse(*args, **kwargs):
        raise OSError(19, "No such device")  # what mmap says where mapping is unsupported

    monkeypatch.setattr("ngshare_gql.storage.staging.mmap.mmap", refuse)
    monkeypatch.setattr(
        "ngshare_gql.storage.staging.os.preadv",
        lambda fd, buffers, offset: real_preadv(fd, [buffers[0][:100_000]], offset),  # as FUSE may
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


def _never_map(*_args, **_kwargs):
    raise AssertionError("mapped a staging file")


def test_unmapped_staging_reads_the_bytes_back_a_window_at_most_at_a_time(tmp_path, monkeypatch):
    """On network and FUSE file systems the helper copies the bytes back instead of
    mapping them, into one buffer: never more than a window at once, however far
    behind it is."""
    monkeypatch.setattr("ngshare_gql.storage.staging.mmap.mmap", _never_map)
    real_preadv, asked = os.preadv, []

    def recording_preadv(fd, buffers, offset):
        asked.append(sum(len(b) for b in buffers))
        return real_preadv(fd, buffers, offset)

    monkeypatch.setattr("ngshare_gql.storage.staging.os.preadv", recording_preadv)
    data = os.urandom(5 * StagedFile.WINDOW + 777)
    staged = StagedFile(str(tmp_path), max_size=1 << 30, mapped=False)
    staged.write(data)  # one write: the helper starts a whole file behind
    assert staged.sha256 == hashlib.sha256(data).hexdigest()
    assert sum(asked) == len(data)
    assert max(asked) == StagedFile.WINDOW
    staged.discard()


def test_a_failed_read_back_fails_the_upload_not_the_worker(tmp_path, monkeypatch):
    monkeypatch.setattr("ngshare_gql.storage.staging.mmap.mmap", _never_map)

    def failing_preadv(*_args):
        raise OSError(5, "Input/output error")  # what a soft NFS mount gives on a timeout

    monkeypatch.setattr("ngshare_gql.storage.staging.os.preadv", failing_preadv)
    data = os.urandom(2 * StagedFile.WINDOW)
    staged = StagedFile(str(tmp_path), max_size=1 << 30, mapped=False)
    with pytest.raises(OSError, match="Input/output error"):
        for i in range(0, len(data), BIG):
            staged.write(data[i : i + BIG])
        staged.finish()
    staged.discard()
    assert not os.path.exists(staged.path)


MOUNTINFO = (
    b"22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    b"30 22 0:40 / /srv/blobs rw,relatime shared:5 master:2 - nfs4 server:/export rw\n"
    b"31 30 0:41 / /srv/blobs/tmp rw - tmpfs tmpfs rw\n"
    b"32 22 0:42 / /srv/blob\\040store rw - fuse.gcsfuse bucket rw\n"
    b"33 22 253:16 / /srv/over rw - ext4 /dev/vdb rw\n"
    b"34 33 0:44 / /srv/over rw - cifs //host/share rw\n"
    b"35 22 0:45 / /srv/tab\\011and\\134slash rw - nfs server:/t rw\n"
    b"36 22 0:46 / /srv/a\xc2\xa0b rw - nfs4 server:/nbsp rw\n"  # a no-break space
    b"37 22 0:47 /sub /srv/bound rw unbindable - virtiofs share rw\n"
)


@pytest.mark.parametrize(
    ("path", "fs_type"),
    [
        ("/srv/blobs/tmp/upload-1", "tmpfs"),  # a local mount inside a network one
        ("/srv/blobs", "nfs4"),
        ("/srv/blobs/ab/cd", "nfs4"),
        ("/srv/blobsX/tmp", "ext4"),  # a longer name, not a path inside /srv/blobs
        ("/srv/blob store/tmp", "fuse.gcsfuse"),  # the table escapes the space
        ("/srv/over/tmp", "cifs"),  # the last of two mounts on one point is the one seen
        ("/srv/tab\tand\\slash/x", "nfs"),
        ("/srv/a\u00a0b/tmp", "nfs4"),
        ("/srv/a/tmp", "ext4"),  # not confused by the no-break space above
        ("/srv/bound/x", "virtiofs"),
        ("/var/lib/ngshare-test-absent", "ext4"),
    ],
)
def test_a_path_not_there_yet_is_on_the_mount_point_holding_it(tmp_path, path, fs_type):
    table = tmp_path / "mountinfo"
    table.write_bytes(MOUNTINFO)
    assert file_system_type(path, str(table)) == fs_type


def test_an_existing_path_is_on_the_mount_of_its_device(tmp_path):
    """A mount made later on a folder above hides what was mounted below: the device
    the folder is really on decides, not the longest mount point."""
    st_dev = os.stat(tmp_path).st_dev
    table = tmp_path / "mountinfo"
    table.write_bytes(
        f"1 0 {os.major(st_dev)}:{os.minor(st_dev)} / /elsewhere rw - nfs4 server:/x rw\n"
        f"2 0 0:99 / / rw - ext4 /dev/other rw\n"
        f"3 0 0:98 / {tmp_path} rw - tmpfs tmpfs rw\n".encode()
    )
    assert file_system_type(str(tmp_path), str(table)) == "nfs4"


def test_without_a_mount_table_the_type_is_unknown_and_staging_is_mapped(tmp_path):
    assert file_system_type("/srv", str(tmp_path / "absent")) is None
    assert maps_safely(None)


@pytest.mark.parametrize(
    ("fs_type", "mapped"),
    [("nfs", False), ("nfs4", False), ("cifs", False), ("smb3", False), ("ceph", False),
     ("9p", False), ("virtiofs", False), ("lustre", False), ("fuse", False),
     ("fuse.gcsfuse", False), ("fuseblk", False),
     ("ext4", True), ("xfs", True), ("btrfs", True), ("tmpfs", True), ("overlay", True)],
)
def test_network_and_fuse_file_systems_are_not_mapped(fs_type, mapped):
    assert maps_safely(fs_type) is mapped


def test_this_machines_mount_table_names_a_real_file_system(tmp_path):
    with open("/proc/filesystems") as f:
        known = {line.split()[-1] for line in f if line.strip()}
    fs_type = file_system_type(str(tmp_path))
    assert fs_type is not None
    assert fs_type.split(".")[0] in known


@pytest.fixture
def app_staging_on_nfs(request, tmp_path, monkeypatch):
    """conftest's ``app``, built while its staging folder seems to be on NFS; request
    it before any fixture that needs ``app`` (``course``), so it is built here."""
    probed: list[str] = []

    def on_nfs(path: str) -> str:
        probed.append(path)
        return "nfs4"

    monkeypatch.setattr("ngshare_gql.app.file_system_type", on_nfs)
    app = request.getfixturevalue("app")
    assert probed == [app.extensions["ngshare"].staging_dir]
    app.extensions["ngshare"].staging_dir = _fresh_folder(tmp_path / "staging")
    return app


def _fresh_folder(path) -> str:
    """A staging folder of the test's own, so that what is left in it is this test's."""
    os.makedirs(path)
    return str(path)


def test_the_app_hashes_uploads_staged_on_a_network_file_system_without_a_map(
    app_staging_on_nfs, course, as_user, monkeypatch, caplog
):
    app = app_staging_on_nfs
    assert app.extensions["ngshare"].staging_maps is False
    said = [r.getMessage() for r in caplog.get_records("setup") if r.name == "ngshare_gql"]
    assert any("is on nfs4" in line and "pread" in line for line in said), said
    monkeypatch.setattr("ngshare_gql.storage.staging.mmap.mmap", _never_map)
    ins = as_user("ins")
    data = os.urandom(3 * StagedFile.WINDOW // 2)
    files, uploads = file_inputs({"data.bin": data})
    released = ins(RELEASE, {"c": "c1", "n": "ps1", "files": files, "force": False}, uploads)
    (stored,) = released["releaseAssignment"]["files"]
    assert stored["sha256"] == hashlib.sha256(data).hexdigest()
    assert ins.client.get(stored["url"], headers=ins.headers).data == data


def test_a_staging_read_error_is_a_clear_error_and_loses_nothing(
    app_staging_on_nfs, course, as_user, monkeypatch
):
    app = app_staging_on_nfs
    ins = as_user("ins")
    real_preadv = os.preadv

    def failing_preadv(*_args):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("ngshare_gql.storage.staging.os.preadv", failing_preadv)
    data = os.urandom(3 * StagedFile.WINDOW // 2)
    files, uploads = file_inputs({"data.bin": data})
    variables = {"c": "c1", "n": "ps1", "files": files, "force": False}
    response = ins.raw(RELEASE, variables, uploads)
    assert response.status_code == 503
    assert response.get_json() == {
        "code": "SERVICE_UNAVAILABLE",
        "error": "the service could not store the upload (Input/output error); try again, "
        "and tell the service's operator if it happens again",
    }
    assert os.listdir(app.extensions["ngshare"].staging_dir) == []
    listed = ins('{ course(id: "c1") { assignments { name } } }')
    assert listed["course"]["assignments"] == []  # nothing half-released
    monkeypatch.setattr("ngshare_gql.storage.staging.os.preadv", real_preadv)
    released = ins(RELEASE, variables, uploads)  # the same upload, once the disk answers
    assert released["releaseAssignment"]["files"][0]["sha256"] == files[0]["sha256"]


def test_a_full_disk_while_staging_is_a_clear_error_and_loses_nothing(
    app, course, as_user, monkeypatch, tmp_path
):
    app.extensions["ngshare"].staging_dir = _fresh_folder(tmp_path / "staging")
    real_init = StagedFile.__init__

    def on_a_full_disk(self, *args, **kwargs) -> None:
        real_init(self, *args, **kwargs)
        self._file = FullDisk(self._file)

    monkeypatch.setattr(StagedFile, "__init__", on_a_full_disk)
    ins = as_user("ins")
    files, uploads = file_inputs({"data.bin": os.urandom(3 * 1024 * 1024)})
    variables = {"c": "c1", "n": "ps1", "files": files, "force": False}
    response = ins.raw(RELEASE, variables, uploads)
    assert response.status_code == 503
    assert "(No space left on device); try again" in response.get_json()["error"]
    assert os.listdir(app.extensions["ngshare"].staging_dir) == []
    monkeypatch.setattr(StagedFile, "__init__", real_init)
    assert ins(RELEASE, variables, uploads)["releaseAssignment"]["released"]


def test_a_client_gone_mid_upload_is_not_called_a_storage_failure(
    course, as_user, monkeypatch, caplog
):
    def reset(*_args, **_kwargs):
        raise ConnectionResetError(104, "Connection reset by peer")

    monkeypatch.setattr("ngshare_gql.storage.staging.multipart.parse", reset)
    ins = as_user("ins")
    files, uploads = file_inputs({"data.bin": b"x" * 1000})
    response = ins.raw(RELEASE, {"c": "c1", "n": "ps1", "files": files, "force": False}, uploads)
    assert response.status_code == 500  # Flask's answer to the error, for a client that left
    assert "could not stage" not in caplog.text
