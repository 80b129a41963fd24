"""The request body as ``readinto``, straight from the socket under gunicorn.

gunicorn's ``wsgi.input`` moves every byte through several buffers (its unreader's
BytesIO, ``Body.read``'s own, then werkzeug's ``LimitedStream``); for a large upload
those copies cost more than hashing the bytes.  When gunicorn (HTTP/1.1, a body of
known length) gives us its socket, :func:`body_readinto` serves what gunicorn has
already buffered and then ``recv_into`` the caller's buffer, so the bytes leave the
kernel once.  It keeps gunicorn's reader in step (the remaining length), so gunicorn
can still drain an unread rest and reuse the connection.  Anything else (chunked
bodies, HTTP/2, another server, the test client) reads through werkzeug's stream.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import IO, Any

ReadInto = Callable[[memoryview], int]


class _SocketBody:
    """The rest of a gunicorn ``LengthReader`` body, read with ``recv_into``."""

    def __init__(self, body: Any, reader: Any) -> None:
        self._body = body
        self._reader = reader
        self._unreader = reader.unreader
        self._sock = reader.unreader.sock

    def readinto(self, buffer: memoryview) -> int:
        want = min(len(buffer), self._reader.length)
        if want <= 0:
            return 0
        held = self._unreader.buf.seek(0, os.SEEK_END)
        if held:  # what gunicorn read past the headers: through its reader, which
            # keeps anything beyond this body (a pipelined request) for gunicorn
            data = self._reader.read(min(want, held))
            buffer[: len(data)] = data
            return len(data)
        n = self._sock.recv_into(buffer, want)
        if not n:  # the client went away: gunicorn must not reuse the connection
            self._body.failed = True
            return 0
        self._reader.length -= n
        return n


def _socket_body(environ: dict) -> _SocketBody | None:
    """gunicorn's body of known length, if that is what ``wsgi.input`` is."""
    if "gunicorn.socket" not in environ:
        return None
    from gunicorn.http.body import Body, LengthReader
    from gunicorn.http.unreader import SocketUnreader

    body = environ.get("wsgi.input")
    if not isinstance(body, Body) or not isinstance(body.reader, LengthReader):
        return None
    if body.buf.tell() or not isinstance(body.reader.unreader, SocketUnreader):
        return None
    return _SocketBody(body, body.reader)


def body_readinto(environ: dict, stream: IO[bytes]) -> ReadInto:
    """``readinto`` over the request body; ``stream`` is werkzeug's for it (already
    checked against the size limits), used when the socket is not ours to read."""
    direct = _socket_body(environ)
    return direct.readinto if direct is not None else stream.readinto  # type: ignore[attr-defined]
