"""Faults against a real gunicorn: the hub down, slow or failing, the database
unreachable, a client vanishing mid-upload, a worker SIGKILLed mid-upload.

Each outage must give a clear 503-class error (HUB_UNAVAILABLE, SERVICE_UNAVAILABLE),
the service must recover by itself when the outage ends, and an interrupted upload
must leave no submission, no file row and no blob behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
import uuid

import psutil
import pytest
import requests
import sqlalchemy as sa

from ngshare_gql.client import Client, ClientError, LocalFile
from tests.conftest import sha
from tests.fakehub import FakeHub
from tests.servers import create_course, create_database, free_port, gunicorn_server, service_env

pytestmark = pytest.mark.slow

HUB_USERS = {"tok-admin": {"name": "admin"}, "tok-s1": {"name": "s1"}, "tok-s2": {"name": "s2"}}
ME = "{ me { name } }"


def raw_post(url: str, token: str, query: str) -> requests.Response:
    return requests.post(url + "graphql", json={"query": query},
                         headers={"Authorization": f"token {token}"}, timeout=30)


def code_of(response: requests.Response) -> str:
    return response.json()["errors"][0]["extensions"]["code"]


def test_hub_down_slow_failing(tmp_path):
    with FakeHub(HUB_USERS) as hub:
        env = service_env(tmp_path, NGSHARE_AUTH="hub", JUPYTERHUB_API_URL=hub.api_url,
                          NGSHARE_HUB_TIMEOUT="1.5")
        # One worker: the identity cache is per process.
        with gunicorn_server(env, workers=1) as url:
            assert Client(url, "tok-admin").execute(ME)["me"]["name"] == "admin"

            hub.down()
            asked = hub.lookups
            # Cached identity: the hub is not needed.
            assert Client(url, "tok-admin").execute(ME)["me"]["name"] == "admin"
            assert hub.lookups == asked
            # Not cached: a clear 503, for GraphQL and for downloads.
            response = raw_post(url, "tok-s1", ME)
            assert response.status_code == 503 and code_of(response) == "HUB_UNAVAILABLE"
            assert response.headers["Retry-After"]
            download = requests.get(url + "files/1", headers={"Authorization": "token tok-s1"})
            assert download.status_code == 503 and download.json()["code"] == "HUB_UNAVAILABLE"
            hub.up()
            assert Client(url, "tok-s1").execute(ME)["me"]["name"] == "s1"  # by itself

            hub.slow(3)
            started = time.monotonic()
            with pytest.raises(ClientError) as slow:
                Client(url, "tok-s2").execute(ME)
            assert slow.value.code == "HUB_UNAVAILABLE"
            assert time.monotonic() - started < 2.5, "NGSHARE_HUB_TIMEOUT was not applied"
            # For 2 s the silent hub is not asked: no request waits for it again.
            started = time.monotonic()
            response = raw_post(url, "tok-unknown", ME)
            assert response.status_code == 503 and "did not answer" in response.text
            assert time.monotonic() - started < 1, "a request waited for the silent hub"
            hub.slow(0)
            time.sleep(2.5)
            assert Client(url, "tok-s2").execute(ME)["me"]["name"] == "s2"

            hub.fail(500)
            response = raw_post(url, "tok-unknown", ME)
            assert response.status_code == 503 and code_of(response) == "HUB_UNAVAILABLE"
            hub.fail(None)
            # A token the hub rejects is the caller's problem, not an outage.
            response = raw_post(url, "tok-unknown", ME)
            assert code_of(response) == "UNAUTHENTICATED"
            assert "tok-unknown" not in response.text


class TcpProxy:
    """A loopback TCP forwarder that can be cut (listener closed, live connections
    reset) and restored on the same port: the database "unreachable" for a while."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone may not.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def test_database_unreachable_and_back(tmp_path, postgres_server):
    db_url = create_database(postgres_server, "ngshare_faults")
    port = int(db_url.rsplit(":", 1)[1].split("/")[0])
    proxy = TcpProxy(port)
    proxy.up()
    try:
        proxied = db_url.replace(f":{port}/", f":{proxy.port}/")
        env = service_env(tmp_path, NGSHARE_DATABASE_URL=proxied)
        with gunicorn_server(env, workers=1) as url:
            admin = Client(url, "admin")
            create_course(admin, "c1", ["ins"], ["s1"])
            release_readme(url, tmp_path, b"# ps1")
            work = tmp_path / "answer.txt"
            work.write_bytes(b"my answer")
            answer = LocalFile.scan("answer.txt", str(work))

            def submit() -> dict:
                return Client(url, "s1").execute_with_files(
                    SUBMIT, {"files": [answer.as_input()]}, {"files.0.content": answer}
                )["submitAssignment"]

            proxy.down()
            response = raw_post(url, "admin", '{ course(id: "c1") { id } }')
            assert response.status_code == 503, response.text
            assert code_of(response) == "SERVICE_UNAVAILABLE"
            assert "psycopg" not in response.text and "127.0.0.1" not in response.text
            health = requests.get(url + "healthz", timeout=30)
            assert health.status_code == 503 and health.json()["database"] == "unavailable"
            # Not ready, but alive: restarting the pod would not bring the database back.
            assert requests.get(url + "livez", timeout=30).status_code == 200
            download = requests.get(url + "files/1", headers={"Authorization": "token admin"})
            assert download.status_code == 503
            assert download.json()["code"] == "SERVICE_UNAVAILABLE"
            # A submission during the outage fails loudly: the student knows to retry.
            with pytest.raises(ClientError) as failed:
                submit()
            assert failed.value.code == "SERVICE_UNAVAILABLE"

            proxy.up()
            deadline = time.monotonic() + 15
            while True:  # recovers by itself: no restart, no operator
                response = raw_post(url, "admin", '{ course(id: "c1") { id } }')
                if response.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert response.json()["data"]["course"]["id"] == "c1"
            assert requests.get(url + "healthz", timeout=30).status_code == 200
            assert submit()["files"][0]["sha256"] == answer.sha256
            listed = Client(url, "ins").execute(
                '{ course(id: "c1") { assignment(name: "ps1") { submissions { id } } } }')
            assert len(listed["course"]["assignment"]["submissions"]) == 1  # nothing half-made
    finally:
        proxy.down()


# --- interrupted uploads ----------------------------------------------------------------

SUBMIT = (
    "mutation($files: [FileInput!]!) { submitAssignment(courseId: \"c1\", assignment: \"ps1\","
    " files: $files) { id files { sha256 } } }"
)


def upload_head(url: str, token: str, content: bytes) -> tuple[bytes, bytes]:
    """The raw HTTP request of a submission of ``content``: (headers + first part, rest)."""
    boundary = uuid.uuid4().hex
    ops = json.dumps({"query": SUBMIT, "variables": {"files": [
        {"path": "big.bin", "sha256": sha(content), "size": len(content), "content": None}]}})
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{ops}\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n"
        '{"0": ["variables.files.0.content"]}\r\n'
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"0\"; filename=\"big.bin\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body = head + content + f"\r\n--{boundary}--\r\n".encode()
    host = url.split("/")[2]
    request = (
        f"POST /graphql HTTP/1.1\r\nHost: {host}\r\nAuthorization: token {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    half = len(request) // 2
    return request[:half], request[half:]


def rows(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
            for t in ("submission", "file", "blob", "event")
        }


def gunicorn_worker(url: str) -> psutil.Process:
    port = int(url.split(":")[2].split("/")[0])
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
            master = psutil.Process(conn.pid)
            while master.parent() and "gunicorn" in " ".join(master.parent().cmdline()):
                master = master.parent()
            (worker,) = master.children()
            return worker
    raise AssertionError("no gunicorn listening")


def test_interrupted_uploads_leave_nothing(tmp_path):
    blobs = tmp_path / "blobs"
    env = service_env(tmp_path, NGSHARE_BLOB_STORE="filesystem", NGSHARE_BLOB_DIR=str(blobs))
    engine = sa.create_engine(env["NGSHARE_DATABASE_URL"])
    big = os.urandom(8 * 1024 * 1024)
    with gunicorn_server(env, workers=1, threads=4) as url:
        admin = Client(url, "admin")
        create_course(admin, "c1", ["ins"], ["s1"])
        readme = b"# ps1"
        release_readme(url, tmp_path, readme)
        before = rows(engine)

        # 1. The client goes away halfway through the body.
        first, _ = upload_head(url, "s1", big)
        with socket.create_connection(("127.0.0.1", int(url.split(":")[2].split("/")[0]))) as s:
            s.sendall(first)
            time.sleep(0.5)
        time.sleep(1)
        assert rows(engine) == before
        assert Client(url, "s1").execute(ME)["me"]["name"] == "s1"  # still serving

        # 2. The worker is SIGKILLed while the body streams in.
        worker = gunicorn_worker(url)
        first, _ = upload_head(url, "s1", big)
        with socket.create_connection(("127.0.0.1", int(url.split(":")[2].split("/")[0]))) as s:
            s.sendall(first)
            time.sleep(0.5)
            os.kill(worker.pid, signal.SIGKILL)
            s.settimeout(10)
            with contextlib.suppress(OSError):
                assert s.recv(100) == b""  # connection closed without an answer
        wait_for_worker(url)
        assert rows(engine) == before
        assert {p.name for p in blobs.glob("??/??/*")} == {sha(readme)}  # no new blob
        # The killed worker's staging file is removed when a worker starts and finds it
        # stale (a live upload keeps writing to its file).
        (leftover,) = (blobs / "tmp").glob("upload-*")
        os.utime(leftover, (time.time() - 2 * 3600,) * 2)
        os.kill(gunicorn_worker(url).pid, signal.SIGKILL)
        wait_for_worker(url)
        assert not leftover.exists()

        # 3. The same upload, whole, goes through and is stored intact.
        path = tmp_path / "big.bin"
        path.write_bytes(big)
        local = LocalFile.scan("big.bin", str(path))
        got = Client(url, "s1").execute_with_files(
            SUBMIT, {"files": [local.as_input()]}, {"files.0.content": local}
        )["submitAssignment"]
        assert got["files"][0]["sha256"] == sha(big)
        after = rows(engine)
        assert after["submission"] == before["submission"] + 1
        assert after["file"] == before["file"] + 1
    engine.dispose()


def wait_for_worker(url: str) -> None:
    """Until the master has started a new worker that answers."""
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(url + "healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "no new worker"
        time.sleep(0.2)


def release_readme(url: str, tmp_path, readme: bytes) -> None:
    path = tmp_path / "README.md"
    path.write_bytes(readme)
    local = LocalFile.scan("README.md", str(path))
    Client(url, "ins").execute_with_files(
        'mutation($f: [FileInput!]!) { releaseAssignment(courseId: "c1", name: "ps1", '
        "files: $f) { name } }",
        {"f": [local.as_input()]},
        {"f.0.content": local},
    )
