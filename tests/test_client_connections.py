"""The client's connections: kept alive while busy, renewed after an idle spell (a
server closes idle ones, and a request sent just then is lost), and failures named for
what they are.  Against a small HTTP server whose connections we can break at will,
and against real gunicorn."""

from __future__ import annotations

import http.server
import json
import os
import random
import runpy
import socketserver
import ssl
import threading
import time
from collections.abc import Iterator

import pytest
import requests
import urllib3

from ngshare_gql.client import Client, ClientError
from tests.servers import REPO, free_port, gunicorn_server, service_env, serving


class _Handler(socketserver.BaseRequestHandler):
    """Answers GraphQL POSTs and file GETs on a kept-alive connection; the server's
    ``drop`` says which request (counted per connection, from 1) gets no answer: the
    connection is closed instead, as a server closing an idle connection does."""

    server: _Server

    def handle(self) -> None:
        with self.server.lock:
            self.server.connections += 1
        stream = self.request.makefile("rb")
        served = 0
        while True:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = stream.readline()
                if not line:
                    return
                head += line
            served += 1
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            stream.read(length)
            if served == self.server.drop:
                return  # closed, unanswered
            if head.startswith(b"GET"):
                time.sleep(self.server.stall_head)
                self.request.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10
                )
                time.sleep(self.server.stall_body)
                return  # the body broken off
            body = json.dumps({"data": {"served": served}}).encode()
            self.request.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.connections = 0
        self.drop = 0
        self.stall_head = self.stall_body = 0.0  # seconds a download waits before / in its body


@pytest.fixture
def server() -> Iterator[_Server]:
    with serving(_Server()) as srv:
        yield srv


def url_of(srv: _Server) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/"


QUERY = "{ me { name } }"


def test_back_to_back_calls_share_one_connection(server):
    client = Client(url_of(server), "t", idle_limit=5.0)
    assert [client.execute(QUERY)["served"] for _ in range(3)] == [1, 2, 3]
    assert server.connections == 1


def test_after_an_idle_spell_a_call_opens_a_new_connection(server):
    # The old connection's next request would go unanswered: a server closing it
    # as idle just as the request is sent.
    server.drop = 2
    client = Client(url_of(server), "t", idle_limit=0.2)
    assert client.execute(QUERY)["served"] == 1
    time.sleep(0.3)
    assert client.execute(QUERY)["served"] == 1  # the first request of a new connection
    assert server.connections == 2


def test_a_connection_closed_before_the_answer_is_named_so(server):
    server.drop = 2
    client = Client(url_of(server), "t", idle_limit=5.0)
    client.execute(QUERY)
    with pytest.raises(ClientError) as lost:
        client.execute(QUERY)
    assert lost.value.code == "CONNECTION_LOST"
    assert "broke off before it answered" in lost.value.message
    assert "may or may not have been carried out" in lost.value.message
    assert "is it running" not in lost.value.message
    assert client.execute(QUERY)["served"] == 1  # and the client goes on, reconnected


def test_a_download_broken_off_is_named_so_and_leaves_no_file(server, tmp_path):
    client = Client(url_of(server), "t")
    dest = tmp_path / "nb.ipynb"
    with pytest.raises(ClientError) as lost:
        client.download("files/x", str(dest), "0" * 64, 1000)
    assert lost.value.code == "CONNECTION_LOST"
    assert "during the download of nb.ipynb" in lost.value.message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("stall_head", "stall_body", "words"),
    [(1.0, 0.0, "timed out before sending nb.ipynb"), (0.0, 1.0, "timed out during the download")],
)
def test_a_download_that_stalls_times_out_clearly(server, tmp_path, stall_head, stall_body, words):
    server.stall_head, server.stall_body = stall_head, stall_body
    client = Client(url_of(server), "t", timeout=0.3)
    with pytest.raises(ClientError) as stalled:
        client.download("files/x", str(tmp_path / "nb.ipynb"), "0" * 64, 1000)
    assert stalled.value.code == "TIMEOUT"
    assert words in stalled.value.message
    assert list(tmp_path.iterdir()) == []


def test_nothing_listening_is_unreachable():
    client = Client(f"http://127.0.0.1:{free_port()}/", "t")
    with pytest.raises(ClientError) as unreachable:
        client.execute(QUERY)
    assert unreachable.value.code == "SERVICE_UNREACHABLE"
    assert "is it running?" in unreachable.value.message


def test_the_limit_is_below_the_keepalive_of_our_gunicorn_and_jupyterhubs_proxy(
    monkeypatch, tmp_path
):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    gunicorn = runpy.run_path(os.path.join(REPO, "deploy", "gunicorn.conf.py"))["keepalive"]
    node = 5.0  # configurable-http-proxy's keepAliveTimeout unless configured (Node's too)
    assert Client("http://x/", "t").idle_limit < min(gunicorn, node) / 2


@pytest.mark.slow
def test_calls_timed_to_a_5_s_keepalive_all_succeed(tmp_path):
    """Many clients each wait about gunicorn's keepalive (5 s here) between calls, so
    that some calls meet the server closing their connection: without the idle
    limit, 12 and 25 of these 200 calls failed in two runs."""
    env = service_env(tmp_path, NGSHARE_AUTH="dev", NGSHARE_KEEPALIVE="5")
    failures: list[str] = []
    with gunicorn_server(env, workers=1, threads=8) as url:

        def user(i: int) -> None:
            client = Client(url, f"u{i}")
            client.execute(QUERY)
            for _ in range(2):
                time.sleep(5.0 + random.uniform(-0.03, 0.03))
                try:
                    client.execute(QUERY)
                except ClientError as exc:
                    failures.append(exc.message)

        threads = [threading.Thread(target=user, args=(i,)) for i in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failures == []


class _Refusing(http.server.BaseHTTPRequestHandler):
    """Answers every POST as the service does when it refuses a request before GraphQL
    runs (a staging disk full, say): an HTTP error with its JSON error body."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"error": "the disk is full; try again", "code": "SERVICE_UNAVAILABLE"})
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *_args) -> None:
        pass


def test_the_services_own_error_reaches_the_user_as_it_said_it():
    with serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)) as srv:
        client = Client(f"http://127.0.0.1:{srv.server_address[1]}/", "t")
        with pytest.raises(ClientError) as failure:
            client.execute("{ me { name } }")
    assert failure.value.message == "the disk is full; try again"
    assert failure.value.code == "SERVICE_UNAVAILABLE"


def _as_requests_raises(error: Exception) -> requests.exceptions.SSLError:
    """``error`` wrapped the way requests and urllib3 report a failed connection."""
    try:
        try:
            raise urllib3.exceptions.SSLError(error)
        except urllib3.exceptions.SSLError as inner:
            raise urllib3.exceptions.MaxRetryError(None, "/graphql", inner) from inner
    except urllib3.exceptions.MaxRetryError as outer:
        return requests.exceptions.SSLError(outer)


def _ssl_error(kind: type[ssl.SSLError], reason: str | None, text: str) -> ssl.SSLError:
    error = kind(1, text)
    error.reason = reason  # what OpenSSL names it; set by the ssl module in real ones
    return error


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "TLS_FAILED"),
        (_ssl_error(ssl.SSLError, "WRONG_VERSION_NUMBER", "wrong version number"), "TLS_FAILED"),
        (_ssl_error(ssl.SSLError, "TLSV13_ALERT_CERTIFICATE_REQUIRED", "alert"), "TLS_FAILED"),
        # closed, or garbled on the way: a kept-alive connection dropped ends the same way
        (_ssl_error(ssl.SSLEOFError, "UNEXPECTED_EOF_WHILE_READING", "EOF"), "CONNECTION_LOST"),
        (_ssl_error(ssl.SSLZeroReturnError, None, "TLS/SSL connection closed"), "CONNECTION_LOST"),
        (_ssl_error(ssl.SSLError, "DECRYPTION_FAILED_OR_BAD_RECORD_MAC", "bad mac"),
         "CONNECTION_LOST"),
    ],
)
def test_only_tls_that_could_not_be_set_up_is_called_a_tls_failure(error, code):
    client = Client("https://exchange.example/", "t")
    lost = client._lost(_as_requests_raises(error), "before it answered")
    assert lost.code == code
    assert ("try again" in str(lost)) == (code == "CONNECTION_LOST")
