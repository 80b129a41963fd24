"""Several downloads at once (``Client.download_many``, which the nbgrader plugins use):
they really overlap, every file arrives verified, progress adds up over all of them,
the first failure stops the rest, and no connection is left open.  Against a small
file server that can hold each answer until several requests are in flight."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import re
import signal
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import urlsplit

import certifi
import pytest
from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange.abc import ExchangeError
from traitlets import TraitError

from ngshare_gql.client import Client, ClientError, Download, LocalFile
from ngshare_gql.nbgrader import ExchangeCollect, ExchangeFetchAssignment
from tests.pki import Pki, make_pki
from tests.servers import free_port, serving


class _FileServer(http.server.ThreadingHTTPServer):
    """Serves ``files`` (name -> bytes) at ``/files/<name>``, HTTP/1.1 kept alive."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _FileHandler)
        self.files: dict[str, bytes] = {}
        self.barrier: threading.Barrier | None = None  # each answer waits here first
        self.delay: dict[str, float] = {}  # seconds before answering for a file
        self.trickle: dict[str, float] = {}  # seconds between a file's 64 KiB pieces
        self.lock = threading.Lock()
        self.requested: list[str] = []
        self.open_connections = 0
        self.in_flight = self.most_in_flight = 0  # requests being answered

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _FileHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _FileServer

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.open_connections += 1

    def finish(self) -> None:
        super().finish()
        with self.server.lock:
            self.server.open_connections -= 1

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        # A request through a proxy names the whole URL: the server serves as the proxy.
        name = urlsplit(self.path).path.removeprefix("/files/")
        with self.server.lock:
            self.server.requested.append(name)
            self.server.in_flight += 1
            self.server.most_in_flight = max(self.server.most_in_flight, self.server.in_flight)
        try:
            self._answer(name)
        finally:
            with self.server.lock:
                self.server.in_flight -= 1

    def _answer(self, name: str) -> None:
        time.sleep(self.server.delay.get(name, 0))
        if self.server.barrier is not None:
            try:
                self.server.barrier.wait()
            except threading.BrokenBarrierError:
                self.send_error(503, "the other requests never came")
                return
        body = self.server.files.get(name)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        pause = self.server.trickle.get(name)
        if pause is None:
            self.wfile.write(body)
            return
        for start in range(0, len(body), 64 * 1024):
            self.wfile.write(body[start : start + 64 * 1024])
            self.wfile.flush()
            time.sleep(pause)

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_FileServer]:
    with serving(_FileServer()) as srv:
        yield srv


def _publish(server: _FileServer, dest, sizes: list[int]) -> list[Download]:
    """Files of the given sizes on the server, each to be downloaded under ``dest``."""
    downloads = []
    for i, size in enumerate(sizes):
        body = os.urandom(size)
        server.files[f"f{i}"] = body
        target = os.path.join(dest, f"dir{i % 3}", f"f{i}.bin")
        downloads.append(Download(f"files/f{i}", target, hashlib.sha256(body).hexdigest(), size))
    return downloads


def _no_part_files(root) -> bool:
    return not [n for _, _, names in os.walk(root) for n in names if ".part-" in n]


def test_downloads_are_in_flight_together(server, tmp_path):
    downloads = _publish(server, tmp_path, [1000] * 4)
    # Each answer waits until four requests are in: one at a time would never get there.
    server.barrier = threading.Barrier(4, timeout=10)
    Client(server.url, "t").download_many(downloads, workers=4)
    for d in downloads:
        with open(d.dest, "rb") as f:
            assert f.read() == server.files[os.path.basename(d.url)]


def test_every_file_arrives_intact_and_progress_counts_all_of_them(server, tmp_path):
    sizes = [0, 1, 70_000, 3 * 1024 * 1024 + 17, 5, 2 * 1024 * 1024, 4096, 0, 123_457, 9]
    downloads = _publish(server, tmp_path, sizes)
    seen: list[tuple[int, int]] = []
    Client(server.url, "t").download_many(
        downloads, progress=lambda done, total: seen.append((done, total)), workers=3
    )
    for d in downloads:
        with open(d.dest, "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == d.sha256
    assert {total for _, total in seen} == {sum(sizes)}
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == sum(sizes)
    assert _no_part_files(tmp_path)
    assert sorted(server.requested) == sorted(f"f{i}" for i in range(len(sizes)))


def test_a_download_gets_the_modification_time_it_was_uploaded_with(server, tmp_path):
    """The API's modifiedAt back on disk, exact to the microsecond it keeps, zone or not;
    without one, the time of arrival."""
    source = tmp_path / "source.txt"
    source.write_bytes(b"x")
    os.utime(source, ns=(0, 981_173_106_789_012_345))
    said = LocalFile.scan("source.txt", str(source)).as_input()["modifiedAt"]
    assert said == "2001-02-03T04:05:06.789012+00:00"  # whole microseconds, UTC
    plain, kept, zoned = _publish(server, tmp_path / "out", [10, 20, 30])
    kept = replace(kept, modified_at=said)
    zoned = replace(zoned, modified_at="2001-02-03T06:05:06.789012+02:00")
    before = time.time_ns()
    Client(server.url, "t").download_many([plain, kept, zoned], workers=2)
    assert os.stat(plain.dest).st_mtime_ns >= before - 10**9  # the file system's clock
    assert os.stat(kept.dest).st_mtime_ns == 981_173_106_789_012_000
    assert os.stat(zoned.dest).st_mtime_ns == 981_173_106_789_012_000


def test_a_time_the_file_system_will_not_take_leaves_the_time_of_arrival(
    server, tmp_path, monkeypatch
):
    """A time from far away (a hostile uploader's, one this file system cannot hold) or
    a file system that refuses to set it never fails a download that arrived whole."""
    far, refused, odd = _publish(server, tmp_path, [10, 20, 30])
    far = replace(far, modified_at="9999-12-31T23:59:59.999999+00:00")
    odd = replace(odd, modified_at="0001-01-01T00:00:00+00:00")
    refused = replace(refused, modified_at="2001-02-03T04:05:06+00:00")
    real_utime = os.utime

    def utime(path, *args, **kwargs):
        if f"{os.sep}dir1{os.sep}" in str(path):  # the second file's folder
            raise PermissionError(1, "Operation not permitted", path)
        return real_utime(path, *args, **kwargs)

    monkeypatch.setattr(os, "utime", utime)
    before = time.time_ns()
    Client(server.url, "t").download_many([far, refused, odd], workers=1)
    for d in (far, refused, odd):
        with open(d.dest, "rb") as f:
            assert f.read() == server.files[os.path.basename(d.url)]
    assert os.stat(refused.dest).st_mtime_ns >= before - 10**9
    assert _no_part_files(tmp_path)


def test_a_file_scanned_without_a_time_or_with_one_past_year_9999_says_none():
    assert "modifiedAt" not in LocalFile("a", "/nowhere", 0, "0" * 64).as_input()
    far = 10**12 * 10**9  # year 33658: tmpfs and btrfs hold it
    assert "modifiedAt" not in LocalFile("a", "/nowhere", 0, "0" * 64, far).as_input()
    before_1970 = LocalFile("a", "/nowhere", 0, "0" * 64, -1_500).as_input()
    assert before_1970["modifiedAt"] == "1969-12-31T23:59:59.999998+00:00"


def test_the_first_failure_stops_the_other_downloads(server, tmp_path):
    downloads = _publish(server, tmp_path, [8 * 1024 * 1024] + [100_000] * 39)
    server.trickle["f0"] = 0.05  # 8 MB in 6.4 s: in flight when f1 fails
    server.files["f1"] = b"not what was declared"  # corrupt on arrival
    started = time.monotonic()
    with pytest.raises(ClientError) as failure:
        Client(server.url, "t").download_many(downloads, workers=2)
    assert failure.value.code == "CORRUPT_DOWNLOAD"
    assert "f1.bin" in failure.value.message
    # f0 stopped at its next chunk, not after the 6.4 s it needed.
    assert time.monotonic() - started < 4
    assert not os.path.exists(downloads[0].dest) and not os.path.exists(downloads[1].dest)
    # Of the other 38, at most the one a thread had just taken.
    assert set(server.requested) <= {"f0", "f1", "f2"}
    assert not any(os.path.exists(d.dest) for d in downloads[3:])
    assert _no_part_files(tmp_path)


def test_ctrl_c_stops_the_downloads_in_flight(server, tmp_path):
    downloads = _publish(server, tmp_path, [8 * 1024 * 1024] * 3 + [10] * 20)
    for name in ("f0", "f1", "f2"):
        server.trickle[name] = 0.05
    interrupt = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    interrupt.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            Client(server.url, "t").download_many(downloads, workers=3)
    finally:
        interrupt.cancel()  # never interrupt what runs after a call that ended early
    assert time.monotonic() - started < 4
    assert not any(os.path.exists(d.dest) for d in downloads)
    assert set(server.requested) == {"f0", "f1", "f2"}
    assert _no_part_files(tmp_path)


def test_a_missing_file_is_reported_as_such(server, tmp_path):
    downloads = _publish(server, tmp_path, [10, 10, 10])
    del server.files["f2"]
    with pytest.raises(ClientError) as failure:
        Client(server.url, "t").download_many(downloads, workers=3)
    assert failure.value.code == "DOWNLOAD_FAILED"
    assert "f2.bin" in failure.value.message and "HTTP 404" in failure.value.message


def test_an_absent_service_is_named_in_one_error(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/"
    downloads = [Download(f"files/{i}", str(tmp_path / f"{i}"), "0" * 64, 10) for i in range(8)]
    with pytest.raises(ClientError) as failure:
        Client(url, "t").download_many(downloads, workers=4)
    assert failure.value.code == "SERVICE_UNREACHABLE"
    assert failure.value.message.count(url) == 1
    assert not os.listdir(tmp_path)


def test_the_threads_connections_are_closed_afterwards(server, tmp_path, monkeypatch):
    made: list[Client] = []  # kept alive here, so only closing them ends their connections
    make = Client._sibling

    def sibling(self: Client) -> Client:
        made.append(make(self))
        return made[-1]

    monkeypatch.setattr(Client, "_sibling", sibling)
    downloads = _publish(server, tmp_path, [50_000] * 12)
    client = Client(server.url, "t")
    client.download_many(downloads, workers=4)
    assert 1 <= len(made) <= 4
    deadline = time.monotonic() + 5
    while server.open_connections and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.open_connections == 0
    client.download_many(downloads[:1])  # the caller's own client is still usable
    with open(downloads[0].dest, "rb") as f:
        assert f.read() == server.files["f0"]


def test_the_token_and_response_hooks_go_with_every_download(tmp_path):
    tokens: list[str | None] = []
    answered: list[int] = []

    class Recording(_FileHandler):
        def do_GET(self) -> None:  # noqa: N802
            tokens.append(self.headers.get("Authorization"))
            super().do_GET()

    with serving(_FileServer()) as srv:
        srv.RequestHandlerClass = Recording
        downloads = _publish(srv, tmp_path, [10] * 6)
        client = Client(srv.url, "secret-token")
        client.session.hooks["response"].append(lambda r, *_a, **_k: answered.append(r.status_code))
        client.download_many(downloads, workers=3)
    assert tokens == ["token secret-token"] * 6
    assert answered == [200] * 6


def test_every_download_goes_through_the_sessions_proxy(server, tmp_path):
    """The threads' clients keep the caller's connection settings: here a proxy,
    the only way to the service's (unresolvable) host."""
    seen: list[str] = []

    class Recording(_FileHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.path)
            super().do_GET()

    server.RequestHandlerClass = Recording
    downloads = _publish(server, tmp_path, [1000] * 6)
    client = Client("http://exchange.invalid/", "t")
    client.session.trust_env = False  # no proxy from the environment either
    client.session.proxies = {"http": server.url}
    client.download_many(downloads, workers=3)
    assert sorted(seen) == sorted(f"http://exchange.invalid/{d.url}" for d in downloads)
    for d in downloads:
        with open(d.dest, "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == d.sha256


def test_the_plugin_refuses_a_path_outside_its_folder_before_downloading_any(
    server, tmp_path, monkeypatch
):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "t")
    files = [
        {"path": "a.ipynb", "url": "files/f0", "sha256": "0" * 64, "size": 1},
        {"path": "../escaped.ipynb", "url": "files/f1", "sha256": "0" * 64, "size": 1},
    ]
    collect = ExchangeCollect(coursedir=CourseDirectory(), url=server.url)
    with pytest.raises(ExchangeError, match="refusing to write outside"):
        collect.download_all(files, str(tmp_path / "inside"))
    assert server.requested == []
    assert not (tmp_path / "escaped.ipynb").exists()


@pytest.mark.parametrize(
    ("files", "folders"),
    [
        ([{"path": "../escaped.ipynb", "url": "files/f1", "sha256": "0" * 64, "size": 1}], []),
        ([], ["../escaped"]),
    ],
)
def test_fetch_replace_refuses_a_path_outside_the_folder_before_touching_anything(
    server, tmp_path, monkeypatch, files, folders
):
    """--replace fails on a path a fresh fetch fails on, before it makes or asks for
    anything (it used to skip that path silently)."""
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "t")
    inside = tmp_path / "inside"
    inside.mkdir()
    fine = {"path": "new/a.ipynb", "url": "files/f0", "sha256": "0" * 64, "size": 1}
    fetch = ExchangeFetchAssignment(coursedir=CourseDirectory(), url=server.url)
    fetch.dest_path = str(inside)
    with pytest.raises(ExchangeError, match="refusing to write outside"):
        fetch.replace_missing([fine, *files], ["made", *folders])
    assert server.requested == []
    assert sorted(os.listdir(tmp_path)) == ["inside"] and os.listdir(inside) == []


def test_fetch_replace_makes_folders_only_inside_the_folder(server, tmp_path, monkeypatch):
    """A path that leaves and comes back (``../x/../inside/a``) is inside once normalised;
    --replace makes its folders from that, never ``x`` beside the destination."""
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "t")
    inside = tmp_path / "inside"
    (inside / "sub").mkdir(parents=True)
    (inside / "sub" / "a.ipynb").write_text("mine")
    fetch = ExchangeFetchAssignment(coursedir=CourseDirectory(), url=server.url)
    fetch.dest_path = str(inside)
    came_back = {"path": "../x/../inside/sub/a.ipynb", "url": "f", "sha256": "0" * 64, "size": 1}
    fetch.replace_missing([came_back], ["../y/../inside/new"])
    assert sorted(os.listdir(tmp_path)) == ["inside"]
    assert sorted(os.listdir(inside)) == ["new", "sub"] and server.requested == []


@pytest.mark.parametrize("workers", [1, 3])
def test_the_plugin_downloads_as_many_files_at_once_as_configured(
    server, tmp_path, monkeypatch, workers
):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "t")
    files = []
    for d in _publish(server, tmp_path / "src", [1000] * 9):
        name = os.path.basename(d.url)
        server.delay[name] = 0.2
        files.append({"path": f"{name}.bin", "url": d.url, "sha256": d.sha256, "size": d.size})
    collect = ExchangeCollect(coursedir=CourseDirectory(), url=server.url, download_workers=workers)
    collect.download_all(files, str(tmp_path / "dest"))
    assert server.most_in_flight == workers
    assert sorted(os.listdir(tmp_path / "dest")) == sorted(f["path"] for f in files)


def test_download_workers_must_be_at_least_one():
    assert ExchangeCollect(coursedir=CourseDirectory()).download_workers == 4
    with pytest.raises(TraitError):
        ExchangeCollect(coursedir=CourseDirectory(), download_workers=0)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(str(tmp_path_factory.mktemp("pki")))


@contextlib.contextmanager
def _tls_server(pki: Pki, seen: list[str]) -> Iterator[_FileServer]:
    """The file server over TLS with the CA's server certificate, asking every client
    for a certificate of the same CA; ``seen`` gets each request's client's name."""

    class Recording(_FileHandler):
        def do_GET(self) -> None:  # noqa: N802
            subject = dict(x[0] for x in self.connection.getpeercert()["subject"])
            seen.append(subject["commonName"])
            super().do_GET()

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=pki.ca)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.verify_mode = ssl.CERT_REQUIRED
    server = _FileServer()
    server.RequestHandlerClass = Recording
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with serving(server) as srv:
        yield srv


def test_every_download_trusts_the_sessions_ca_and_shows_its_certificate(
    pki, tmp_path, monkeypatch
):
    """The threads' clients keep the caller's TLS settings: the CA that signed the
    service's certificate, and the client certificate the service asks for."""
    # requests lets a CA bundle in the environment override verify unless trust_env is
    # off: a thread's client that lost the caller's trust_env would not trust the service.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    seen: list[str] = []
    with _tls_server(pki, seen) as srv:
        downloads = _publish(srv, tmp_path, [1000] * 6)
        client = Client(srv.url.replace("http:", "https:"), "t")
        client.session.trust_env = False
        client.session.verify = pki.ca
        client.session.cert = (pki.client_cert, pki.client_key)
        client.download_many(downloads, workers=3)
    assert seen == ["a notebook server"] * 6
    for d in downloads:
        with open(d.dest, "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == d.sha256


def test_a_service_the_client_cannot_trust_is_named_and_nothing_arrives(pki, tmp_path):
    seen: list[str] = []
    with _tls_server(pki, seen) as srv:
        downloads = _publish(srv, tmp_path, [1000] * 6)
        client = Client(srv.url.replace("http:", "https:"), "t")
        client.session.trust_env = False  # the public CAs only, not the tests' own
        client.session.cert = (pki.client_cert, pki.client_key)
        with pytest.raises(ClientError) as caught:
            client.download_many(downloads, workers=3)
        with pytest.raises(ClientError) as called:  # a GraphQL call says the same
            client.execute("{ __typename }")
    for error in (caught.value, called.value):
        assert error.code == "TLS_FAILED", error
        assert f"TLS with the exchange service at {client.url} failed: " in str(error)
        assert re.search(r": self.signed certificate in certificate chain; check the", str(error))
        assert "try again" not in str(error)
    assert seen == []
    assert not any(os.path.exists(d.dest) for d in downloads) and _no_part_files(tmp_path)


def test_https_to_a_service_without_tls_is_named(server, tmp_path):
    downloads = _publish(server, tmp_path, [1000] * 2)
    client = Client(server.url.replace("http:", "https:"), "t")
    with pytest.raises(ClientError) as caught:
        client.download_many(downloads, workers=2)
    assert caught.value.code == "TLS_FAILED" and "try again" not in str(caught.value)
    assert "is its URL http, not https?" in str(caught.value)
    assert server.requested == []
    assert not any(os.path.exists(d.dest) for d in downloads)


def test_a_tls_connection_the_service_drops_is_lost_not_a_tls_failure(pki, tmp_path):
    """A service that stops halfway through a file (a worker restarted) is a connection
    to try again, over TLS too: only a failed setup asks the user to change settings."""
    seen: list[str] = []
    with _tls_server(pki, seen) as srv:

        class Halfway(srv.RequestHandlerClass):
            def _answer(self, name: str) -> None:
                body = self.server.files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.close_connection = True

        srv.RequestHandlerClass = Halfway
        downloads = _publish(srv, tmp_path, [256 * 1024] * 2)
        client = Client(srv.url.replace("http:", "https:"), "t")
        client.session.trust_env = False
        client.session.verify = pki.ca
        client.session.cert = (pki.client_cert, pki.client_key)
        with pytest.raises(ClientError) as caught:
            client.download_many(downloads, workers=2)
    assert caught.value.code == "CONNECTION_LOST", caught.value
    assert "try again" in str(caught.value)
    assert seen and _no_part_files(tmp_path)
