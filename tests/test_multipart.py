"""The streaming multipart parser gives what werkzeug's gives, whatever the read sizes."""

from __future__ import annotations

import io
import os
import random

import pytest
from werkzeug.datastructures import Headers
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import MultiPartParser

from ngshare_gql.storage import multipart

BOUNDARY = b"b0undary-" + b"x" * 20


def body(parts: list[tuple[str, str | None, bytes]], boundary: bytes = BOUNDARY) -> bytes:
    out = b"preamble is ignored\r\n"
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += b"--" + boundary + b"\r\nContent-Disposition: " + disposition.encode()
        out += b"\r\nContent-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
    return out + b"--" + boundary + b"--\r\nepilogue"


def chunked(data: bytes, rng: random.Random):
    """A ``readinto`` that fills pieces of random sizes, as a socket does."""
    stream = io.BytesIO(data)

    def readinto(buffer: memoryview) -> int:
        size = min(len(buffer), rng.choice([1, 2, 7, 64, 4096, 65536, 1 << 20]))
        return stream.readinto(buffer[:size])

    return readinto


def ours(data: bytes, readinto=None, boundary: bytes = BOUNDARY, max_form=None, max_parts=None):
    def open_file(name: str, filename: str, content_type, headers: Headers):
        return io.BytesIO()

    fields, files = multipart.parse(
        readinto or io.BytesIO(data).readinto, boundary, open_file, max_form, max_parts
    )
    return fields, [(k, f.filename, f.stream.read()) for k, f in files]


def werkzeugs(data: bytes, boundary: bytes = BOUNDARY):
    parser = MultiPartParser(stream_factory=lambda **_: io.BytesIO())
    form, files = parser.parse(io.BytesIO(data), boundary, len(data))
    return list(form.items(multi=True)), [
        (k, f.filename, f.stream.read()) for k, f in files.items(multi=True)
    ]


def tricky_payloads(rng: random.Random) -> list[bytes]:
    """Contents that look like boundaries, line ends, or cross read edges.

    (A client never sends the boundary itself inside a part: it picks a random one.)
    """
    near = b"\r\n--" + BOUNDARY[:-1]
    return [
        b"",
        b"\r\n",
        b"--" + BOUNDARY[:-1],
        near,
        near + b"y",
        b"\r\n--" + BOUNDARY + b"X not at a line start",
        os.urandom(3 * (1 << 20) + 17),
        bytes(rng.getrandbits(8) for _ in range(5000)) + b"\r\n-",
    ]


@pytest.mark.parametrize("seed", range(6))
def test_same_result_as_werkzeug_for_any_read_sizes(seed):
    rng = random.Random(seed)
    payloads = tricky_payloads(rng)
    parts = [("operations", None, b'{"query": "q"}'), ("map", None, '{"0": ["é"]}'.encode())]
    parts += [(str(i), f"f{i}.bin", p) for i, p in enumerate(payloads)]
    rng.shuffle(parts)
    data = body(parts)
    expected = werkzeugs(data)
    assert ours(data) == expected
    assert ours(data, chunked(data, rng)) == expected
    assert [name for name, _, _ in expected[1]] == [n for n, f, _ in parts if f is not None]


def test_files_are_rewound_and_fields_decoded():
    fields, files = ours(body([("a", None, "ü".encode()), ("f", "x.txt", b"hello")]))
    assert fields == [("a", "ü")]
    assert files == [("f", "x.txt", b"hello")]


@pytest.mark.parametrize(
    "data",
    [
        b"",  # nothing at all
        b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",
        b"no boundary anywhere",
        b"--" + BOUNDARY + b"\r\n\r\nno disposition\r\n--" + BOUNDARY + b"--",
        b"--" + BOUNDARY + b"junk\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--"
        + BOUNDARY + b"--",
        b"--" + BOUNDARY + b"\r\n" + b"X-Long: " + b"h" * 40000 + b"\r\n\r\n",
    ],
)
def test_malformed_bodies_raise_value_error(data):
    with pytest.raises(ValueError):
        ours(data)


def test_limits_on_fields_and_parts():
    big_field = body([("operations", None, b"x" * 1000)])
    with pytest.raises(RequestEntityTooLarge):
        ours(big_field, max_form=999)
    assert ours(big_field, max_form=1000)[0] == [("operations", "x" * 1000)]
    many = body([(str(i), None, b"v") for i in range(5)])
    with pytest.raises(RequestEntityTooLarge):
        ours(many, max_parts=4)
    assert len(ours(many, max_parts=5)[0]) == 5


def test_a_large_file_part_is_read_through_one_reused_buffer():
    """Each refill reuses the parser's buffer: a 24 MiB part allocates no new
    megabyte buffers, which the staging file relies on (it keeps no views)."""
    data = body([("f", "big.bin", os.urandom(24 << 20))])
    buffers, received = [], []

    class Sink(io.BytesIO):
        def write(self, view) -> int:
            buffers.append(view.obj)  # kept alive, so a new buffer would get a new id
            received.append(len(view))
            return len(view)

    multipart.parse(io.BytesIO(data).readinto, BOUNDARY, lambda *_: Sink(), None, None)
    assert sum(received) == 24 << 20
    assert len(buffers) >= 24 and len({id(b) for b in buffers}) == 1


def test_a_preamble_longer_than_a_buffer_is_refused_without_holding_it():
    """No client sends a preamble; one that runs past the read buffer is refused,
    so a body can't make the parser hold more than its one buffer."""
    data = b"p" * (multipart.READ_SIZE + multipart.MAX_HEADER_BLOCK + 5) + body(
        [("f", "x.bin", b"after a long preamble")]
    )
    with pytest.raises(ValueError, match="preamble is too long"):
        ours(data)
    short = b"p" * 1000 + body([("f", "x.bin", b"after a short preamble")])
    assert ours(short)[1] == werkzeugs(short)[1] == [("f", "x.bin", b"after a short preamble")]


def test_missing_boundary_is_malformed():
    with pytest.raises(ValueError):
        ours(body([("a", None, b"1")]), boundary=b"")


def test_the_client_body_streams_what_the_parser_reads_back(tmp_path):
    """The client's multipart body (file pieces are views of one reused buffer, each
    sent before the next is read) has the length it declares and parses back intact."""
    from ngshare_gql.client import CHUNK, LocalFile, MultipartBody

    contents = {"big.bin": os.urandom(2 * CHUNK + 123), "small.txt": b"hello"}
    files = {}
    for i, (name, data) in enumerate(contents.items()):
        path = tmp_path / name
        path.write_bytes(data)
        files[str(i)] = LocalFile.scan(name, str(path))
    seen = []
    body = MultipartBody(
        {"query": "q", "variables": {}}, {"0": ["variables.a"], "1": ["variables.b"]}, files,
        progress=lambda sent, total: seen.append((sent, total)),
    )
    sent = b"".join(bytes(piece) for piece in body)  # copied as sent, like an HTTP client
    assert len(sent) == len(body)
    boundary = body.content_type.split("boundary=")[1].encode()
    fields, parsed = ours(sent, boundary=boundary)
    assert [name for name, _ in fields] == ["operations", "map"]
    assert [(key, data) for key, _, data in parsed] == [
        ("0", contents["big.bin"]), ("1", contents["small.txt"])
    ]
    assert seen[-1] == (sum(map(len, contents.values())),) * 2
