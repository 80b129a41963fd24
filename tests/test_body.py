"""Reading upload bodies straight from gunicorn's socket (ngshare_gql.storage.body).

The unit tests drive gunicorn's own request parser over a socket pair, so the fast
path meets the gunicorn objects it reads around; the last test sends pipelined
requests to a real gunicorn.
"""

from __future__ import annotations

import io
import json
import os
import socket
import threading

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

from ngshare_gql.client import Client, LocalFile
from ngshare_gql.storage.body import _SocketBody, body_readinto
from tests.servers import create_course, gunicorn_server, service_env


def post(body: bytes, path: str = "/up", chunked: bool = False) -> bytes:
    if chunked:
        framed = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
        return (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
            + framed
        )
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


class Connection:
    """gunicorn's parser on one end of a socket pair, a client on the other."""

    def __init__(self) -> None:
        self.server, self.client = socket.socketpair()
        self.cfg = Config()
        self.parser = RequestParser(self.cfg, self.server, ("127.0.0.1", 1))

    def send_later(self, data: bytes) -> threading.Thread:
        """Send from a thread (more than fits in the socket buffer would block)."""
        thread = threading.Thread(target=self.client.sendall, args=(data,))
        thread.start()
        return thread

    def next_environ(self) -> dict:
        req = next(self.parser)
        _, environ = wsgi.create(req, self.server, ("127.0.0.1", 1), ("127.0.0.1", 2), self.cfg)
        return environ

    def close(self) -> None:
        self.server.close()
        self.client.close()


@pytest.fixture
def conn():
    c = Connection()
    yield c
    c.close()


def read_all(readinto, size: int = 64 * 1024) -> bytes:
    out = io.BytesIO()
    buffer = bytearray(size)
    while n := readinto(memoryview(buffer)):
        out.write(buffer[:n])
    return out.getvalue()


def test_a_body_of_known_length_is_read_from_the_socket_whole(conn):
    body = os.urandom(3 * 1024 * 1024 + 5)
    sender = conn.send_later(post(body))
    environ = conn.next_environ()
    readinto = body_readinto(environ, stream=None)
    assert isinstance(readinto.__self__, _SocketBody)  # the fast path, not werkzeug's stream
    assert read_all(readinto) == body
    sender.join()
    assert environ["wsgi.input"].reader.length == 0  # gunicorn knows the body is consumed


def test_a_pipelined_request_behind_the_body_is_left_to_gunicorn(conn):
    first = os.urandom(1000)
    conn.client.sendall(post(first, "/one") + post(b"second body", "/two"))
    environ = conn.next_environ()
    assert read_all(body_readinto(environ, stream=None), size=7) == first
    environ = conn.next_environ()
    assert environ["PATH_INFO"] == "/two"
    assert environ["wsgi.input"].read() == b"second body"


def test_gunicorn_drains_what_the_application_left_unread(conn):
    first = os.urandom(2 * 1024 * 1024)
    sender = conn.send_later(post(first, "/one") + post(b"ok", "/two"))
    environ = conn.next_environ()
    readinto = body_readinto(environ, stream=None)
    buffer = bytearray(4096)
    assert readinto(memoryview(buffer)) == 4096 and bytes(buffer) == first[:4096]
    environ = conn.next_environ()  # gunicorn skips the rest of the first body
    assert environ["PATH_INFO"] == "/two" and environ["wsgi.input"].read() == b"ok"
    sender.join()


def test_a_client_gone_mid_body_ends_the_read_and_the_connection(conn):
    conn.client.sendall(post(b"x" * 100_000)[:50_000])
    conn.client.shutdown(socket.SHUT_WR)
    environ = conn.next_environ()
    data = read_all(body_readinto(environ, stream=None))
    assert 0 < len(data) < 100_000
    assert environ["wsgi.input"].failed  # gunicorn must not read another request here


def test_chunked_bodies_and_other_servers_read_through_the_stream(conn):
    conn.client.sendall(post(b"chunked body", chunked=True))
    environ = conn.next_environ()
    stream = io.BytesIO(b"from the stream")
    assert read_all(body_readinto(environ, stream)) == b"from the stream"
    assert read_all(body_readinto({"wsgi.input": stream}, io.BytesIO(b"plain"))) == b"plain"


@pytest.mark.slow
def test_uploads_and_pipelined_requests_through_real_gunicorn(tmp_path):
    """The client library's upload; by hand, one with a GET pipelined behind it on the same
    connection, and one that waits for "100 Continue" before sending its body."""
    data = os.urandom(5 * 1024 * 1024)
    env = service_env(
        tmp_path, NGSHARE_BLOB_STORE="filesystem", NGSHARE_BLOB_DIR=str(tmp_path / "b")
    )
    with gunicorn_server(env, workers=1, threads=2) as url:
        create_course(Client(url, "admin"), "c1", ["prof"])
        source = tmp_path / "data.bin"
        source.write_bytes(data)
        local = LocalFile.scan("data.bin", str(source))
        prof = Client(url, "prof")
        mutation = (
            "mutation($f: [FileInput!]!) { releaseAssignment(courseId: \"c1\", name: \"a\","
            " files: $f) { files { sha256 url } } }"
        )
        variables = {"f": [local.as_input()]}
        released = prof.execute_with_files(mutation, variables, {"f.0.content": local})
        (stored,) = released["releaseAssignment"]["files"]
        assert stored["sha256"] == local.sha256
        prof.download(stored["url"], str(tmp_path / "back.bin"), local.sha256)
        assert (tmp_path / "back.bin").read_bytes() == data

        # The same upload by hand, with a health check pipelined behind it.
        host, port = url.split("//")[1].split("/")[0].split(":")
        boundary = "pipelined-boundary"
        ops = {"query": mutation.replace('"a"', '"b"'), "variables": variables}
        body = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n"
            f"{json.dumps(ops)}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"map\""
            f"\r\n\r\n{json.dumps({'0': ['variables.f.0.content']})}\r\n--{boundary}\r\n"
            "Content-Disposition: form-data; name=\"0\"; filename=\"data.bin\"\r\n\r\n"
        ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
        request = (
            f"POST /graphql HTTP/1.1\r\nHost: {host}\r\nAuthorization: token prof\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body + f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sender = threading.Thread(target=sock.sendall, args=(request,))
            sender.start()
            received = b""
            while received.count(b"HTTP/1.1 ") < 2 or not received.rstrip().endswith(b"}"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
            sender.join()
        first, second = received.split(b"HTTP/1.1 ")[1:3]
        assert first.startswith(b"200") and local.sha256.encode() in first
        assert second.startswith(b"200")

        # As curl sends a large body: headers with "Expect: 100-continue", the body
        # only after the server says to go on.
        body = body.replace(b'name: \\"b\\"', b'name: \\"c\\"')
        head = (
            f"POST /graphql HTTP/1.1\r\nHost: {host}\r\nAuthorization: token prof\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
        ).encode()
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(head)
            interim = b""
            while not interim.endswith(b"\r\n\r\n"):
                interim += sock.recv(1)
            assert interim.startswith(b"HTTP/1.1 100")
            sock.sendall(body)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        assert received.startswith(b"HTTP/1.1 200") and local.sha256.encode() in received
        assert b'"errors"' not in received
