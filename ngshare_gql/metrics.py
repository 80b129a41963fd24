"""Prometheus metrics and one JSON access-log line per request.

Every request passes :class:`RequestObserver`, a WSGI middleware that times it,
counts the body bytes in and out (streamed downloads included) and, when the
response is done, updates the metrics and writes one log line.  Handlers leave
what only they know in the WSGI environ: the GraphQL operation and outcome
(:class:`OperationMetrics`) and the caller's name (``auth.authenticate``).

Several gunicorn workers: each worker is a process with its own counters.  When
``PROMETHEUS_MULTIPROC_DIR`` is set (``deploy/gunicorn.conf.py`` sets it to a
fresh folder), prometheus_client's multiprocess mode writes them to files there
and ``/metrics`` answers with the sum over all workers, whichever worker serves
the scrape.  Without it (the Flask dev server, one process) the counters live in
memory.

The log line carries the user name, never a token, and the path without its
query string (the OAuth callback's ``?code=`` is a credential too).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Response, current_app, request
from graphql import FieldNode, OperationDefinitionNode
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from strawberry.extensions import SchemaExtension

REQUESTS = Counter(
    "ngshare_requests",
    "Requests by GraphQL operation (or HTTP endpoint) and outcome (ok or an error code)",
    ["operation", "outcome"],
)
DURATION = Histogram(
    "ngshare_request_duration_seconds",
    "Time from receiving a request to sending the last byte of its response",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
BODY_BYTES = Counter(
    "ngshare_body_bytes", "Request and response body bytes", ["direction"]
)
IDENTITY_CACHE = Counter(
    "ngshare_identity_cache",
    "Identity look-ups answered from the cache (hit), by asking the hub (miss), and of "
    "those misses, answered from the hub's last answer while it gave none (outage)",
    ["result"],
)

ENVIRON_USER = "ngshare.user"
ENVIRON_OPERATION = "ngshare.operation"
ENVIRON_OPERATION_NAME = "ngshare.operation_name"
ENVIRON_OUTCOME = "ngshare.outcome"

access_log = logging.getLogger("ngshare_gql.access")


def _setup_access_log() -> None:
    """Raw JSON lines on stderr, whatever the host's logging setup (gunicorn has none for us)."""
    if not access_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = False


def record_identity_lookup(result: str) -> None:
    IDENTITY_CACHE.labels(result).inc()


def metrics_view() -> Response:
    """The metrics in Prometheus' text format, summed over workers in multiprocess mode."""
    expected = current_app.extensions["ngshare"].settings.metrics_token
    if expected:
        _, _, given = request.headers.get("Authorization", "").partition(" ")
        if not hmac.compare_digest(given.strip().encode(), expected.encode()):
            return Response(
                "metrics need 'Authorization: Bearer <NGSHARE_METRICS_TOKEN>'\n",
                status=401,
                content_type="text/plain",
            )
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        from prometheus_client import REGISTRY

        body = generate_latest(REGISTRY)
    return Response(body, content_type=CONTENT_TYPE_LATEST)


INTROSPECTION = frozenset({"__typename", "__schema", "__type"})


def _operation_label(ctx) -> str:
    """``query:me``, ``mutation:releaseAssignment``: root fields the schema knows.

    Anything else (a parse error, unknown fields) is ``invalid``, so clients cannot
    make up labels.
    """
    document = ctx.graphql_document
    for definition in document.definitions if document else ():
        if not isinstance(definition, OperationDefinitionNode):
            continue
        if ctx.operation_name and (
            definition.name is None or definition.name.value != ctx.operation_name
        ):
            continue
        root = ctx.schema._schema.get_root_type(definition.operation)
        names = set()
        for selection in definition.selection_set.selections:
            if not isinstance(selection, FieldNode):
                names.add("...")
            elif root is not None and (
                selection.name.value in root.fields or selection.name.value in INTROSPECTION
            ):
                names.add(selection.name.value)
            else:
                return "invalid"
        return f"{definition.operation.value}:{'+'.join(sorted(names)[:4])}"
    return "invalid"


class OperationMetrics(SchemaExtension):
    """Labels a GraphQL request by its root fields (``query:me``), bounded by the schema.

    The client-chosen operation name goes to the log only: as a metric label it
    would let any client create unbounded series.
    """

    def on_operation(self) -> Iterator[None]:
        yield
        ctx = self.execution_context
        environ = ctx.context.request.environ
        errors = list(ctx.pre_execution_errors or ())
        if ctx.result is not None and ctx.result.errors:
            errors += ctx.result.errors
        if ctx.operation_name:
            environ[ENVIRON_OPERATION_NAME] = ctx.operation_name[:100]
        environ[ENVIRON_OPERATION] = _operation_label(ctx)
        if errors:
            code = (errors[0].extensions or {}).get("code") or "INTERNAL_SERVER_ERROR"
            environ[ENVIRON_OUTCOME] = str(code)
        else:
            environ[ENVIRON_OUTCOME] = "ok"


class _CountedBody:
    """The response iterable, counting bytes and reporting when it is closed."""

    def __init__(self, body: Iterable[bytes], done: Callable[[int], None]) -> None:
        self._body = body
        self._done = done
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._done(self.sent)


def _observe_close(body: Any, on_close: Callable[[], None]) -> Any:
    """``body`` itself (its type lets the server sendfile() it), reporting when closed."""
    original = getattr(body, "close", None)

    def close() -> None:
        try:
            if original is not None:
                original()
        finally:
            on_close()

    body.close = close
    return body


class RequestObserver:
    """WSGI middleware: metrics and the access-log line for every request."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        _setup_access_log()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        started = time.perf_counter()
        status: list[int] = []

        length: list[int] = []

        def observed_start(code: str, headers: list, exc_info: Any = None):
            status.append(int(code.split(" ", 1)[0]))
            length[:] = [int(v) for k, v in headers if k.lower() == "content-length"][:1]
            return start_response(code, headers, exc_info)

        body = self.app(environ, observed_start)

        def done(sent: int) -> None:
            self._finish(environ, status[-1] if status else 500, started, sent)

        file_wrapper = environ.get("wsgi.file_wrapper")
        if file_wrapper is not None and isinstance(body, file_wrapper):
            # Hand the server its own file wrapper back, so gunicorn can sendfile()
            # downloads instead of copying them through Python 8 KiB at a time.
            return _observe_close(body, lambda: done(length[0] if length else 0))
        return _CountedBody(body, done)

    @staticmethod
    def _finish(environ: dict[str, Any], status: int, started: float, sent: int) -> None:
        duration = time.perf_counter() - started
        try:
            received = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            received = 0
        endpoint = environ.get("ngshare.endpoint") or "other"
        operation = environ.get(ENVIRON_OPERATION) or endpoint
        outcome = environ.get(ENVIRON_OUTCOME) or ("ok" if status < 400 else f"http_{status}")
        REQUESTS.labels(operation, outcome).inc()
        DURATION.labels(operation).observe(duration)
        BODY_BYTES.labels("in").inc(received)
        BODY_BYTES.labels("out").inc(sent)
        access_log.info(
            json.dumps(
                {
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "method": environ.get("REQUEST_METHOD"),
                    "path": environ.get("PATH_INFO"),
                    "status": status,
                    "user": environ.get(ENVIRON_USER),
                    "operation": operation,
                    "operation_name": environ.get(ENVIRON_OPERATION_NAME),
                    "outcome": outcome,
                    "duration_ms": round(duration * 1000, 1),
                    "bytes_in": received,
                    "bytes_out": sent,
                }
            )
        )


def label_endpoint() -> None:
    """``before_request``: the Flask endpoint names a non-GraphQL request's metrics."""
    request.environ["ngshare.endpoint"] = request.endpoint or "other"
