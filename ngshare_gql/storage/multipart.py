"""A streaming ``multipart/form-data`` parser built for large file parts.

Werkzeug's parser reads 64 KiB at a time and re-scans its buffer for every
event; behind gunicorn's body reader that held uploads to a few tens of MB/s,
far below what hashing and the socket allow.  This one reads up to 1 MiB at a
time straight into its buffer (``readinto``, see :mod:`.body`), finds the boundary
with ``bytearray.find`` (C speed) and hands each file part's bytes to its writer
as views of that buffer, without copying them again; the buffer is reused for the
whole body, so an upload allocates no memory per megabyte.  Its results match
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

# (name, filename, content type, headers) -> a writable, seekable file for the part;
# its ``write`` gets views of the parser's buffer and must not keep them
OpenFile = Callable[[str, str, "str | None", Headers], IO[bytes]]


class MultipartError(ValueError):
    """The body is not well-formed multipart/form-data."""


class _Reader:
    """One buffer over ``readinto`` with a cursor, refilled up to 1 MiB at a time.

    A refill moves the unread rest (for file data, at most a delimiter's length) to
    the front and reads on after it, straight from the socket: the bulk of an upload
    is neither copied nor allocated anew.  ``buf[:end]`` holds the data; views of it
    handed to writers are valid only during the call.
    """

    def __init__(self, readinto: ReadInto) -> None:
        self._readinto = readinto
        self.buf = bytearray(READ_SIZE + MAX_HEADER_BLOCK)
        self.buf[:2] = b"\r\n"  # so the first boundary looks like every later delimiter
        self.end = 2
        self.pos = 0

    def more(self) -> None:
        # What is kept is at most a delimiter and blanks, or a header block: see find.
        rest = self.end - self.pos
        self.buf[:rest] = self.buf[self.pos : self.end]
        with memoryview(self.buf) as view:
            filled, stop = rest, rest + READ_SIZE
            while filled < stop and (n := self._readinto(view[filled:stop])):
                filled += n
        if filled == rest:
            raise MultipartError("unexpected end of the multipart body")
        self.end = filled
        self.pos = 0

    def find(self, needle: bytes, what: str) -> int:
        """Index (from the cursor) of ``needle``, reading on until ``what`` (the
        bytes before it) would be longer than :data:`MAX_HEADER_BLOCK`."""
        while True:
            i = self.buf.find(needle, self.pos, self.end)
            if i >= 0:
                return i - self.pos
            if self.end - self.pos > MAX_HEADER_BLOCK:
                raise MultipartError(f"the multipart {what} is too long")
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


def _after_delimiter(buf: bytearray, j: int, end: int) -> str:
    """What the bytes after a delimiter at ``j`` make it (werkzeug's rule, CRLF only).

    ``"end"`` (``--``), ``"part"`` (optional blanks, then CRLF), ``"data"`` (anything
    else: the boundary text inside content), or ``"more"`` (can't tell yet).
    """
    if end - j < 2:
        return "more"
    if buf.startswith(b"--", j, end):
        return "end"
    k = j
    while k < end and buf[k] in b" \t" and k - j < 1024:
        k += 1
    if end - k < 2:
        return "more" if k - j < 1024 else "data"
    return "part" if buf.startswith(b"\r\n", k, end) else "data"


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
    reader.take(reader.find(delimiter, "preamble") + len(delimiter))
    parts = 0
    while True:
        while reader.end - reader.pos < 2:
            reader.more()
        if reader.buf.startswith(b"--", reader.pos, reader.end):
            return fields, files  # the closing delimiter; the epilogue is ignored
        line_end = reader.find(b"\r\n", "boundary line")
        if reader.take(line_end).strip(b" \t"):
            raise MultipartError("garbage after a multipart boundary")
        head_end = reader.find(b"\r\n\r\n", "part header block")
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
            buf, pos, end = reader.buf, reader.pos, reader.end
            i = buf.find(delimiter, start, end)
            if i >= 0:
                kind = _after_delimiter(buf, i + len(delimiter), end)
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
            if end - pos > keep:
                write(memoryview(buf)[pos : end - keep])
                reader.pos = end - keep
            reader.more()
            start = reader.pos
        if filename is None:
            fields.append((name, b"".join(chunks).decode(_charset(headers), "replace")))
        else:
            container.seek(0)
            files.append((name, FileStorage(container, filename, name, headers=headers)))
