"""A streaming ``multipart/form-data`` parser built for large file parts.

Werkzeug's parser reads 64 KiB at a time and re-scans its buffer for every
event; behind gunicorn's body reader that held uploads to a few tens of MB/s,
far below what hashing and the socket allow.  This one reads up to 1 MiB at a
time straight into its buffer (``readinto``, see :mod:`.body`), finds the boundary
with ``bytearray.find`` (C speed) and hands each file part's bytes to its writer
as views of that buffer, without copying them again.  Its results match
werkzeug's for well-formed bodies (fields as ``str``, files as ``FileStorage``
rewound to the start); a malformed body raises ``ValueError``, which callers treat
as werkzeug does (an empty form).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import IO

from werkzeug.datastructures import FileStorage, Headers
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header

from ngshare_gql.storage.body import ReadInto

READ_SIZE = 1024 * 1024
MAX_HEADER_BLOCK = 16 * 1024
_CONTINUATION = re.compile(rb"\r\n[ \t]")

# (name, filename, content type, headers) -> a writable, seekable file for the part
OpenFile = Callable[[str, str, "str | None", Headers], IO[bytes]]


class MultipartError(ValueError):
    """The body is not well-formed multipart/form-data."""


class _Reader:
    """A buffer over ``readinto`` with a cursor, refilled 1 MiB at a time.

    Each refill is a new buffer, holding the unread rest of the old one (for file
    data, at most a delimiter's length) and then up to 1 MiB read straight into it:
    the bulk of an upload is never copied, and the views a writer may still hold of
    the old buffer (the staging helper thread) stay valid.
    """

    def __init__(self, readinto: ReadInto) -> None:
        self._readinto = readinto
        self.buf = bytearray(b"\r\n")  # so the first boundary looks like every later delimiter
        self.pos = 0

    def more(self) -> None:
        rest = len(self.buf) - self.pos
        new = bytearray(rest + READ_SIZE)
        new[:rest] = memoryview(self.buf)[self.pos :]
        with memoryview(new) as view:
            filled = rest
            while filled < len(new) and (n := self._readinto(view[filled:])):
                filled += n
        if filled == rest:
            raise MultipartError("unexpected end of the multipart body")
        del new[filled:]
        self.buf = new
        self.pos = 0

    def find(self, needle: bytes, limit: int | None = None) -> int:
        """Index (from the cursor) of ``needle``, reading on as needed."""
        while True:
            i = self.buf.find(needle, self.pos)
            if i >= 0:
                return i - self.pos
            if limit is not None and len(self.buf) - self.pos > limit:
                raise MultipartError("multipart part headers are too large")
            self.more()

    def take(self, n: int) -> bytes:
        data = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return data


def _headers(block: bytes) -> Headers:
    """Part headers, parsed the way werkzeug's decoder does."""
    items = []
    for line in _CONTINUATION.sub(b" ", block).splitlines():
        line = line.strip()
        if line:
            name, _, value = line.decode().partition(":")
            items.append((name.strip(), value.strip()))
    return Headers(items)


def _after_delimiter(buf: bytes, j: int) -> str:
    """What the bytes after a delimiter at ``j`` make it (werkzeug's rule, CRLF only).

    ``"end"`` (``--``), ``"part"`` (optional blanks, then CRLF), ``"data"`` (anything
    else: the boundary text inside content), or ``"more"`` (can't tell yet).
    """
    if len(buf) - j < 2:
        return "more"
    if buf.startswith(b"--", j):
        return "end"
    k = j
    while k < len(buf) and buf[k] in b" \t" and k - j < 1024:
        k += 1
    if len(buf) - k < 2:
        return "more" if k - j < 1024 else "data"
    return "part" if buf.startswith(b"\r\n", k) else "data"


def _charset(headers: Headers) -> str:
    """A field's charset, from the same safe list werkzeug accepts."""
    _, options = parse_options_header(headers.get("content-type"))
    charset = options.get("charset", "").lower()
    return charset if charset in {"ascii", "us-ascii", "utf-8", "iso-8859-1"} else "utf-8"


def parse(
    readinto: ReadInto,
    boundary: bytes,
    open_file: OpenFile,
    max_form_memory_size: int | None,
    max_parts: int | None,
) -> tuple[list[tuple[str, str]], list[tuple[str, FileStorage]]]:
    """Parse a body read through ``readinto``; returns (fields, files) in body order."""
    if not boundary or len(boundary) > 200:
        raise MultipartError("missing or invalid multipart boundary")
    delimiter = b"\r\n--" + boundary
    keep = len(delimiter) - 1
    reader = _Reader(readinto)
    fields: list[tuple[str, str]] = []
    files: list[tuple[str, FileStorage]] = []
    reader.take(reader.find(delimiter) + len(delimiter))  # the preamble
    parts = 0
    while True:
        while len(reader.buf) - reader.pos < 2:
            reader.more()
        if reader.buf.startswith(b"--", reader.pos):
            return fields, files  # the closing delimiter; the epilogue is ignored
        line_end = reader.find(b"\r\n", limit=MAX_HEADER_BLOCK)
        if reader.take(line_end).strip(b" \t"):
            raise MultipartError("garbage after a multipart boundary")
        head_end = reader.find(b"\r\n\r\n", limit=MAX_HEADER_BLOCK)
        headers = _headers(reader.take(head_end + 4))
        parts += 1
        if max_parts is not None and parts > max_parts:
            raise RequestEntityTooLarge()
        disposition = headers.get("content-disposition")
        if disposition is None:
            raise MultipartError("a multipart part has no Content-Disposition")
        _, options = parse_options_header(disposition)
        name = options.get("name", "")
        filename = options.get("filename")
        if filename is None:
            chunks: list[bytes] = []
            size = 0

            def write(data: memoryview, chunks: list[bytes] = chunks) -> None:
                nonlocal size
                size += len(data)
                if max_form_memory_size is not None and size > max_form_memory_size:
                    raise RequestEntityTooLarge()
                chunks.append(bytes(data))

        else:
            container = open_file(name, filename, headers.get("content-type"), headers)
            write = container.write  # type: ignore[assignment]
        start = reader.pos  # where to look for the next delimiter
        while True:
            buf, pos = reader.buf, reader.pos
            i = buf.find(delimiter, start)
            if i >= 0:
                kind = _after_delimiter(buf, i + len(delimiter))
                if kind == "data":  # the boundary text inside content, not a delimiter
                    start = i + 1
                    continue
                if i > pos:
                    write(memoryview(buf)[pos:i])
                reader.pos = i
                if kind == "more":
                    reader.more()
                    start = reader.pos
                    continue
                reader.pos = i + len(delimiter)
                break
            if len(buf) - pos > keep:
                write(memoryview(buf)[pos : len(buf) - keep])
                reader.pos = len(buf) - keep
            reader.more()
            start = reader.pos
        if filename is None:
            fields.append((name, b"".join(chunks).decode(_charset(headers), "replace")))
        else:
            container.seek(0)
            files.append((name, FileStorage(container, filename, name, headers=headers)))
