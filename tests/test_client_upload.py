"""The client's uploads against a real gunicorn when a file changes meanwhile: the body
keeps the length it announced, and a file cut short is a clear error."""

from __future__ import annotations

import os

import pytest

from ngshare_gql.client import CHUNK, Client, ClientError, LocalFile
from tests.servers import create_course, gunicorn_server, service_env

pytestmark = pytest.mark.slow

RELEASE = (
    "mutation($a: String!, $f: [FileInput!]!) { releaseAssignment(courseId: \"c1\", name: $a,"
    " files: $f) { files { sha256 size url } } }"
)
ASSIGNMENTS = '{ course(id: "c1") { assignments { name } } }'


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("client-upload")
    env = service_env(tmp, NGSHARE_BLOB_STORE="filesystem", NGSHARE_BLOB_DIR=str(tmp / "blobs"))
    with gunicorn_server(env, workers=1, threads=2) as url:
        create_course(Client(url, "admin"), "c1", ["prof"])
        yield url


@pytest.fixture
def scanned(tmp_path):
    data = os.urandom(8 * CHUNK + 12345)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    return path, data, LocalFile.scan("big.bin", str(path))


def release(client: Client, name: str, local: LocalFile, progress) -> dict:
    variables = {"a": name, "f": [local.as_input()]}
    data = client.execute_with_files(RELEASE, variables, {"f.0.content": local}, progress)
    (stored,) = data["releaseAssignment"]["files"]
    return stored


def test_a_file_that_shrinks_mid_upload_fails_clearly_and_stores_nothing(url, scanned):
    path, data, local = scanned
    prof = Client(url, "prof", timeout=20)  # a body cut short would wait out the timeout

    def shrink(sent: int, total: int) -> None:
        if sent < total // 2:
            os.truncate(path, total // 2)

    with pytest.raises(ClientError) as failed:
        release(prof, "shrunk", local, shrink)
    assert failed.value.code == "FILE_CHANGED"
    assert "changed while it was being uploaded" in failed.value.message
    names = [a["name"] for a in prof.execute(ASSIGNMENTS)["course"]["assignments"]]
    assert "shrunk" not in names  # and the same client goes on working


def test_a_file_that_grows_mid_upload_sends_what_was_scanned(url, scanned, tmp_path):
    path, data, local = scanned
    prof = Client(url, "prof")

    def grow(sent: int, total: int) -> None:
        with open(path, "ab") as f:
            f.write(b"appended while uploading")

    stored = release(prof, "grown", local, grow)
    assert stored["sha256"] == local.sha256 and stored["size"] == len(data)
    prof.download(stored["url"], str(tmp_path / "back.bin"), local.sha256)
    assert (tmp_path / "back.bin").read_bytes() == data
