"""A small client for the service: GraphQL calls, streamed uploads and verified downloads.

Used by the nbgrader plugins, the benchmark and the tests.  Uploads follow the
GraphQL multipart request spec with a body generated chunk by chunk, and
downloads are written to disk as they arrive and checked against their sha256:
no file is ever held whole in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urljoin

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError

CHUNK = 1024 * 1024
Progress = Callable[[int, int], None]

# A kept-alive connection idle longer than this is not used again.  Servers close
# idle connections after a while (gunicorn and Node's http server, which JupyterHub's
# proxy runs on, after 5 s), and a request sent just as that happens is lost: the
# client sees a reset it cannot tell from a service that failed mid-request.  Hashing a
# large dataset between two calls leaves the connection idle that long.
IDLE_REUSE_LIMIT = 2.0

# Files downloaded at once by :meth:`Client.download_many`.  Each download waits a round
# trip (through the hub's proxy, then the service) before its first byte; a few in
# flight overlap those waits and the client's hashing with the service's work.
DOWNLOAD_WORKERS = 4


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def time_of(mtime_ns: int) -> str | None:
    """A file's modification time (``st_mtime_ns``) as the API's UTC date-time, to the
    microsecond; None for one outside years 1-9999 (some file systems hold those)."""
    try:
        return (_EPOCH + timedelta(microseconds=mtime_ns // 1000)).isoformat()
    except OverflowError:
        return None


def mtime_of(value: str) -> int:
    """The API's date-time as ``st_mtime_ns`` (a time without zone is UTC)."""
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (when - _EPOCH) // timedelta(microseconds=1) * 1000


class ClientError(Exception):
    """A failed call; ``code`` is the service's error code when it sent one."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass
class LocalFile:
    """A file on disk to upload as ``path`` (relative, with '/')."""

    path: str
    local_path: str
    size: int
    sha256: str
    mtime_ns: int | None = None

    @classmethod
    def scan(cls, path: str, local_path: str) -> LocalFile:
        digest = hashlib.sha256()
        size = 0
        with open(local_path, "rb") as f:
            mtime_ns = os.fstat(f.fileno()).st_mtime_ns
            for chunk in iter(lambda: f.read(CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
        return cls(path, local_path, size, digest.hexdigest(), mtime_ns)

    def as_input(self) -> dict[str, Any]:
        when = None if self.mtime_ns is None else time_of(self.mtime_ns)
        said = {} if when is None else {"modifiedAt": when}
        return {"path": self.path, "sha256": self.sha256, "size": self.size, "content": None,
                **said}


class MultipartBody:
    """A multipart/form-data body streamed from disk, with a known length."""

    def __init__(
        self,
        operations: dict,
        file_map: dict[str, list[str]],
        files: dict[str, LocalFile],
        progress: Progress | None = None,
    ) -> None:
        self.boundary = secrets.token_hex(32)  # long: the server finds it faster
        self.files = files
        self.progress = progress
        self._parts: list[bytes | LocalFile] = []
        for name, value in (("operations", operations), ("map", file_map)):
            self._parts.append(self._head(name) + b"\r\n" + json.dumps(value).encode() + b"\r\n")
        for key, local in files.items():
            self._parts.append(self._head(key, filename=os.path.basename(local.path)))
            self._parts.append(local)
            self._parts.append(b"\r\n")
        self._parts.append(f"--{self.boundary}--\r\n".encode())
        self.total_files = sum(f.size for f in files.values())

    def _head(self, name: str, filename: str | None = None) -> bytes:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            safe = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
            disposition += f'; filename="{safe}"'
            kind = "Content-Type: application/octet-stream\r\n"
        else:
            kind = "Content-Type: application/json\r\n"
        head = f"--{self.boundary}\r\nContent-Disposition: {disposition}\r\n{kind}"
        return head.encode("utf-8") + (b"\r\n" if filename is not None else b"")

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return sum(p.size if isinstance(p, LocalFile) else len(p) for p in self._parts)

    def __iter__(self) -> Iterator[bytes | memoryview]:
        """The body in pieces; a file's pieces are views of one reused buffer, each
        valid until the next is asked for (the HTTP client sends it before that).

        Each file gives exactly as many bytes as it was scanned with, as the body's
        length says: one that grew since sends its first ``size`` bytes (the server's
        sha256 check refuses them if they changed too), one that shrank is an error
        rather than a body cut short."""
        sent = 0
        buffer = memoryview(bytearray(CHUNK))
        for part in self._parts:
            if not isinstance(part, LocalFile):
                yield part
                continue
            left = part.size
            with open(part.local_path, "rb", buffering=0) as f:
                while left:
                    n = f.readinto(buffer[: min(CHUNK, left)])
                    if not n:
                        raise ClientError(
                            f"{part.local_path} changed while it was being uploaded (it is "
                            f"shorter than the {part.size} bytes scanned); try again",
                            "FILE_CHANGED",
                        )
                    left -= n
                    sent += n
                    if self.progress:
                        self.progress(sent, self.total_files)
                    yield buffer[:n]


class _Stopped(Exception):
    """Ends a download of :meth:`Client.download_many` after another one failed or the
    caller was interrupted."""


# TLS errors that mean a connection cannot be set up however often it is tried: the
# service's certificate not trusted, a service that does not speak TLS, no protocol
# both sides accept, the service refusing the client's certificate.  Any other (a
# connection closed, a record garbled on the way) is a connection lost, to try again.
_TLS_SETUP_REASONS = frozenset({
    "CERTIFICATE_VERIFY_FAILED", "WRONG_VERSION_NUMBER", "UNSUPPORTED_PROTOCOL",
    "NO_PROTOCOLS_AVAILABLE", "TLSV1_ALERT_PROTOCOL_VERSION", "SSLV3_ALERT_HANDSHAKE_FAILURE",
    "TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_BAD_CERTIFICATE", "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED", "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "TLSV1_ALERT_ACCESS_DENIED", "TLSV1_UNRECOGNIZED_NAME",
})


def _tls_error(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error that kept a connection from being set up, if that is what a
    requests failure comes from: requests and urllib3 wrap it in their own exceptions
    (``args``, ``reason``) and chain it (``__context__``)."""
    todo, seen = [exc], set()
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ssl.SSLError):
            setup = isinstance(e, ssl.SSLCertVerificationError) or (
                getattr(e, "reason", None) in _TLS_SETUP_REASONS
            )
            return e if setup else None
        linked = (*e.args, getattr(e, "reason", None), e.__cause__, e.__context__)
        todo.extend(x for x in linked if isinstance(x, BaseException))
    return None


@dataclass(frozen=True)
class Download:
    """A file to fetch from ``url`` into ``dest``, with its expected sha256 and size,
    and the modification time (the API's ``modifiedAt``) to give it, if any."""

    url: str
    dest: str
    sha256: str
    size: int
    modified_at: str | None = None


class Client:
    """Talks to one service at ``url`` (its base, ending with '/') with one token;
    one thread at a time (:meth:`download_many` gives its threads clients of their own)."""

    def __init__(
        self, url: str, token: str, timeout: float = 60.0, idle_limit: float = IDLE_REUSE_LIMIT
    ) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.timeout = timeout
        self.idle_limit = idle_limit
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token}"
        self._last_answer = time.monotonic()

    def _sibling(self) -> Client:
        """Another client of the same service with the same token, response hooks and
        connection settings (TLS verification, client certificate, proxies), over
        connections of its own; mounted transport adapters are not shared."""
        other = Client(self.url, "", self.timeout, self.idle_limit)
        mine, its = self.session, other.session
        its.headers.update(mine.headers)
        its.hooks = {event: list(h) for event, h in mine.hooks.items()}
        its.verify, its.cert, its.trust_env = mine.verify, mine.cert, mine.trust_env
        its.proxies = dict(mine.proxies)
        return other

    def _renew_if_idle(self) -> None:
        """Before a request: drop the kept-alive connection if it has been idle longer
        than ``idle_limit`` (see :data:`IDLE_REUSE_LIMIT`), so the request opens a new one."""
        if time.monotonic() - self._last_answer > self.idle_limit:
            self.session.close()  # closes the pooled connections; the session stays usable

    def _lost(self, exc: requests.RequestException, doing: str) -> ClientError:
        """What a connection failure means to the user: TLS that cannot be set up, no
        service to connect to, one that stopped sending, or a connection that broke off
        after the request went out."""
        tls = _tls_error(exc)
        if tls is not None:  # trying again will not help: a setting has to change
            why = getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or tls
            if why == "WRONG_VERSION_NUMBER":
                detail = "it does not answer in TLS; is its URL http, not https?"
            else:
                detail = (
                    f"{why}; check the CA certificates this client trusts (REQUESTS_CA_BUNDLE) "
                    "and, if the service asks for one, the client certificate"
                )
            return ClientError(
                f"TLS with the exchange service at {self.url} failed: {detail}", "TLS_FAILED"
            )
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps it
        if isinstance(reason, (NewConnectionError, ConnectTimeoutError)):
            return ClientError(
                f"cannot reach the exchange service at {self.url}; is it running?",
                "SERVICE_UNREACHABLE",
            )
        if isinstance(reason, ReadTimeoutError):
            return ClientError(f"the exchange service at {self.url} timed out {doing}", "TIMEOUT")
        return ClientError(
            f"the connection to the exchange service at {self.url} broke off {doing}; "
            "try again",
            "CONNECTION_LOST",
        )

    # --- GraphQL --------------------------------------------------------------------
    def execute(self, query: str, variables: dict | None = None) -> dict:
        return self._send(json_body={"query": query, "variables": variables or {}})

    def execute_with_files(
        self,
        query: str,
        variables: dict,
        uploads: dict[str, LocalFile],
        progress: Progress | None = None,
    ) -> dict:
        """``uploads`` maps a dotted variable path (``files.0.content``) to a file."""
        if not uploads:
            return self.execute(query, variables)
        keys = {str(i): path for i, path in enumerate(uploads)}
        body = MultipartBody(
            {"query": query, "variables": variables},
            {k: [f"variables.{p}"] for k, p in keys.items()},
            {k: uploads[p] for k, p in keys.items()},
            progress,
        )
        return self._send(body=body)

    def _send(self, json_body: dict | None = None, body: MultipartBody | None = None) -> dict:
        self._renew_if_idle()
        try:
            if body is not None:
                response = self.session.post(
                    self.url + "graphql",
                    data=body,
                    headers={"Content-Type": body.content_type, "Content-Length": str(len(body))},
                    timeout=self.timeout,
                )
            else:
                response = self.session.post(
                    self.url + "graphql", json=json_body, timeout=self.timeout
                )
        except requests.ConnectionError as exc:
            raise self._lost(
                exc, "before it answered (the operation may or may not have been carried out)"
            ) from None
        except requests.Timeout:
            raise ClientError(f"the exchange service at {self.url} timed out", "TIMEOUT") from None
        finally:
            self._last_answer = time.monotonic()
        try:
            payload = response.json()
        except ValueError:
            raise ClientError(
                f"the exchange service at {self.url} answered HTTP {response.status_code} "
                "without a GraphQL response; is the URL right?",
                "BAD_RESPONSE",
            ) from None
        errors = payload.get("errors") if isinstance(payload, dict) else None
        if errors:
            first = errors[0]
            raise ClientError(
                first.get("message", "error"), (first.get("extensions") or {}).get("code")
            )
        if response.status_code >= 400 or not isinstance(payload, dict):
            said = payload.get("error") if isinstance(payload, dict) else None
            if isinstance(said, str):  # the service's own error, refused before GraphQL ran
                raise ClientError(said, payload.get("code"))
            raise ClientError(f"HTTP {response.status_code} from {self.url}", "BAD_RESPONSE")
        return payload["data"]

    # --- files ----------------------------------------------------------------------
    def upload_plan(self, course_id: str, files: list[LocalFile]) -> set[str]:
        """The hashes among ``files`` whose bytes the server needs."""
        if not files:
            return set()
        data = self.execute(
            "query($c: String!, $h: [String!]!) { missingContent(courseId: $c, sha256: $h) }",
            {"c": course_id, "h": sorted({f.sha256 for f in files})},
        )
        return set(data["missingContent"])

    def download(
        self,
        url: str,
        dest: str,
        sha256: str,
        size: int | None = None,
        progress: Progress | None = None,
        modified_at: str | None = None,
    ) -> None:
        """GET ``url`` into ``dest`` (atomically), verifying the bytes' sha256; with
        ``modified_at`` (the API's ``modifiedAt``), the file gets that modification time."""
        full = urljoin(self.url, url)
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        tmp = f"{dest}.part-{secrets.token_hex(4)}"
        digest = hashlib.sha256()
        received = 0
        self._renew_if_idle()
        try:
            with self.session.get(full, stream=True, timeout=self.timeout) as response:
                if response.status_code != 200:
                    raise ClientError(
                        f"download of {os.path.basename(dest)} failed: HTTP {response.status_code}",
                        "DOWNLOAD_FAILED",
                    )
                total = size or int(response.headers.get("Content-Length") or 0)
                with open(tmp, "wb") as out:
                    for chunk in response.iter_content(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        received += len(chunk)
                        if progress:
                            progress(received, total)
            if digest.hexdigest() != sha256:
                raise ClientError(
                    f"download of {os.path.basename(dest)} is corrupt (sha256 mismatch)",
                    "CORRUPT_DOWNLOAD",
                )
            if modified_at is not None:
                # A time this file system cannot hold, or one that refuses to set it,
                # leaves the time of arrival: the bytes are what matters.
                with contextlib.suppress(OSError, OverflowError, ValueError):
                    os.utime(tmp, ns=(time.time_ns(), mtime_of(modified_at)))
            os.replace(tmp, dest)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            # the second: the body ended before its Content-Length (a worker restarted)
            raise self._lost(exc, f"during the download of {os.path.basename(dest)}") from None
        except requests.Timeout:
            raise ClientError(
                f"the exchange service at {self.url} timed out before sending "
                f"{os.path.basename(dest)}",
                "TIMEOUT",
            ) from None
        finally:
            self._last_answer = time.monotonic()
            if os.path.exists(tmp):
                os.unlink(tmp)

    def download_many(
        self,
        downloads: Sequence[Download],
        progress: Progress | None = None,
        workers: int = DOWNLOAD_WORKERS,
    ) -> None:
        """Download each file as :meth:`download` does, up to ``workers`` at a time.

        ``progress`` gets the bytes received over all files and their total.  The
        first failure (or Ctrl-C) stops the other downloads at their next chunk and
        the ones not started; then the first failure is raised.  Files that arrived
        whole stay.
        """
        total = sum(d.size for d in downloads)
        lock = threading.Lock()
        received = 0
        failures: list[BaseException] = []
        stop = threading.Event()
        mine = threading.local()
        siblings: list[Client] = []

        def client() -> Client:
            if not hasattr(mine, "client"):
                mine.client = self._sibling()
                with lock:
                    siblings.append(mine.client)
            return mine.client

        def fetch(d: Download, using: Callable[[], Client]) -> None:
            if stop.is_set():
                return
            counted = 0

            def step(now: int, _size: int) -> None:
                nonlocal counted, received
                if stop.is_set():
                    raise _Stopped
                with lock:
                    received += now - counted
                    counted = now
                    if progress:
                        progress(received, total)

            try:
                using().download(d.url, d.dest, d.sha256, d.size, step, d.modified_at)
            except _Stopped:
                pass
            except BaseException as exc:  # noqa: BLE001 - raised by the caller's thread
                with lock:
                    failures.append(exc)
                stop.set()

        if workers <= 1 or len(downloads) <= 1:
            for d in downloads:
                fetch(d, lambda: self)
        else:
            pool = ThreadPoolExecutor(min(workers, len(downloads)), "download")
            try:
                wait([pool.submit(fetch, d, client) for d in downloads])
            finally:
                stop.set()  # after Ctrl-C: the downloads in flight stop at their next chunk
                pool.shutdown(cancel_futures=True)
                for sibling in siblings:
                    sibling.session.close()
        if failures:
            raise failures[0]
