"""A small stand-in for JupyterHub's ``GET /hub/api/user``, for fault and load tests.

It answers from a token table, like the real hub answers for a notebook server's
token; answers ``GET /hub/api/users/<name>`` from the same table to a token whose
model is ``kind: service`` (the service's own look-up of a browser session's user);
trades OAuth codes for tokens at ``POST /hub/api/oauth2/token`` from a code table
(the browser login), and has switches to misbehave: go down (connection refused), be
slow, answer 500.  It counts the lookups it answered, so tests can tell whether the
service asked the hub or used its cache.

    with FakeHub({"tok-s1": {"name": "s1"}}) as hub:
        env = service_env(tmp_path, NGSHARE_AUTH="hub", JUPYTERHUB_API_URL=hub.api_url)
        hub.down(); ...; hub.up()
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote

from tests.servers import free_port


class FakeHub:
    """A threaded HTTP server on loopback answering ``/hub/api/user`` from ``tokens``.

    ``tokens`` maps a token to the user model the hub would return (at least
    ``name``; ``admin``, ``groups`` and ``kind`` are optional).
    """

    def __init__(self, tokens: dict[str, dict] | None = None, port: int | None = None) -> None:
        self.tokens: dict[str, dict] = dict(tokens or {})
        self.codes: dict[str, str] = {}  # OAuth code -> the token it is traded for
        self.port = port or free_port()
        self.delay = 0.0
        self.status: int | None = None
        self.lookups = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def api_url(self) -> str:
        """What the service wants as ``JUPYTERHUB_API_URL``."""
        return f"http://127.0.0.1:{self.port}/hub/api"

    # --- switches --------------------------------------------------------------------
    def up(self) -> None:
        """Start answering (again) on the same port."""
        if self._server is not None:
            return
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server protocol
                hub._answer(self)

            def do_POST(self) -> None:  # noqa: N802
                hub._trade_code(self)

            def log_message(self, *args) -> None:
                """Quiet: requests carry tokens."""

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def down(self) -> None:
        """Stop listening: connections are refused, as when the hub pod is gone."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self._server = self._thread = None

    def slow(self, seconds: float) -> None:
        """Wait ``seconds`` before each answer (0 to stop)."""
        self.delay = seconds

    def fail(self, status: int | None = 500) -> None:
        """Answer every lookup with ``status`` (None to stop)."""
        self.status = status

    def __enter__(self) -> FakeHub:
        self.up()
        return self

    def __exit__(self, *exc) -> None:
        self.down()

    # --- the endpoint ----------------------------------------------------------------
    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            self.lookups += 1
        path = request.path.rstrip("/")
        if path != "/hub/api/user" and not path.startswith("/hub/api/users/"):
            return self._send(request, 404, {"message": "Not Found"})
        if self.status is not None:
            return self._send(request, self.status, {"message": "hub error"})
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        model = self.tokens.get(token.strip()) if scheme.lower() in ("token", "bearer") else None
        if model is None:
            return self._send(request, 403, {"message": "Forbidden"})
        if path != "/hub/api/user":  # a service asking about a user
            if model.get("kind") != "service":
                return self._send(request, 403, {"message": "Forbidden"})
            name = unquote(path[len("/hub/api/users/") :])
            users = [m for m in self.tokens.values() if m["name"] == name]
            if not users or users[0].get("kind", "user") != "user":
                return self._send(request, 404, {"message": "Not Found"})
            model = {k: v for k, v in users[0].items() if k != "scopes"}
        body = {"kind": "user", "admin": False, "groups": [], **model}
        return self._send(request, 200, body)

    def _trade_code(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        form = parse_qs(request.rfile.read(length).decode())
        if request.path.rstrip("/") != "/hub/api/oauth2/token":
            return self._send(request, 404, {"message": "Not Found"})
        if self.status is not None:
            return self._send(request, self.status, {"message": "hub error"})
        token = self.codes.pop((form.get("code") or [""])[0], None)
        if token is None:
            return self._send(request, 400, {"error": "invalid_grant"})
        return self._send(request, 200, {"access_token": token, "token_type": "Bearer"})

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the service gave up waiting (hub_timeout)
