"""The bad-input corpus: hostile paths, lying hashes, broken bodies, absurd queries.

Each request must get a clear error with a code (never a 500, never a traceback
or a server path), and afterwards every table holds the same number of rows and
no staging file is left behind: a bad request stores nothing.
"""

from __future__ import annotations

import json
import os
import unicodedata

import pytest
import sqlalchemy as sa

from ngshare_gql import create_app
from ngshare_gql.config import Settings
from ngshare_gql.extensions import db
from tests.conftest import (
    RELEASE,
    SUBMIT,
    database_url,
    file_inputs,
    release,
    reset_database,
    sha,
)
from tests.fakehub import FakeHub

CODES = {"BAD_USER_INPUT", "PAYLOAD_TOO_LARGE", "NOT_FOUND", "FORBIDDEN", "UNAUTHENTICATED"}
GOOD = b"good bytes"


def counts() -> dict[str, int]:
    return {
        t.name: db.session.scalar(sa.select(sa.func.count()).select_from(t))
        for t in db.metadata.sorted_tables
    }


@pytest.fixture(params=["sqlite"])
def db_url(request, tmp_path) -> str:
    """SQLite; the cases that reach the database in bulk run on PostgreSQL as well
    (``parametrize("db_url", BOTH_DATABASES, indirect=True)``)."""
    if request.param == "sqlite":
        return database_url(tmp_path)
    return request.getfixturevalue("postgres_test_db")


BOTH_DATABASES = ["sqlite", "postgresql"]


@pytest.fixture
def world(app, course, as_user, tmp_path):
    """c1 with ps1 released; yields a checker that a response is a clean refusal
    which left the database and (a private) staging folder as they were."""
    staging = str(tmp_path / "staging")
    os.makedirs(staging)
    app.extensions["ngshare"].staging_dir = staging
    release(as_user("ins"), "c1", "ps1", {"ps1.ipynb": b"{}"})
    with app.app_context():
        before = counts()

    def refused(response, codes=CODES, status: int | None = None) -> str:
        assert response.status_code < 500, response.data[:500]
        if status is not None:
            assert response.status_code == status
        body = response.get_json(silent=True)
        assert body is not None, f"not JSON: {response.status_code} {response.data[:300]!r}"
        assert body.get("errors"), body
        error = body["errors"][0]
        code = (error.get("extensions") or {}).get("code")
        assert code in codes, error
        text = json.dumps(body)
        assert "Traceback" not in text and os.getcwd() not in text and "/site-packages" not in text
        assert "Unexpected error" not in error["message"]
        with app.app_context():
            assert counts() == before, "a refused request changed the database"
        assert os.listdir(staging) == [], "a refused request left staging files"
        return code

    return refused


def release_raw(gql, paths_or_specs, uploads=None, name="ps2"):
    return gql.raw(
        RELEASE,
        {"c": "c1", "n": name, "files": paths_or_specs, "force": False, "due": None},
        uploads,
    )


HOSTILE_PATHS = [
    "../x",
    "/etc/passwd",
    "a/../../b",
    "a/..",
    "./a",
    "a//b",
    "a/",
    "C:\\x",
    "C:x",
    "a\\b",
    "..\\..\\windows",
    "a\x00b",
    "a\nb",
    "a\x7fb",
    "x" * 10_000,
    ("d/" * 600) + "f",
    "",
    " ",
    "a/ /b",
    "a/.. /b",
    "evil\u202egpj.exe",
]


@pytest.mark.parametrize("path", HOSTILE_PATHS, ids=[repr(p[:20]) for p in HOSTILE_PATHS])
@pytest.mark.parametrize("who", ["ins", "s1"])
def test_hostile_paths(world, as_user, path, who):
    gql = as_user(who)
    inputs, uploads = file_inputs({path: GOOD})
    if who == "ins":
        response = release_raw(gql, inputs, uploads)
    else:
        response = gql.raw(SUBMIT, {"c": "c1", "a": "ps1", "files": inputs, "ts": None}, uploads)
    assert world(response) == "BAD_USER_INPUT"


def test_names_differing_only_in_unicode_normalisation(world, as_user):
    nfc = unicodedata.normalize("NFC", "café.ipynb")
    nfd = unicodedata.normalize("NFD", "café.ipynb")
    assert nfc != nfd
    inputs, uploads = file_inputs({nfc: GOOD, nfd: b"other"})
    assert world(release_raw(as_user("ins"), inputs, uploads)) == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"sha256": sha(b"other bytes")}, "BAD_USER_INPUT"),
        ({"size": len(GOOD) + 1}, "BAD_USER_INPUT"),
        ({"size": len(GOOD) - 1}, "BAD_USER_INPUT"),
        ({"size": -1}, "BAD_USER_INPUT"),
        ({"size": 2**70}, "PAYLOAD_TOO_LARGE"),
        ({"size": 10**12}, "PAYLOAD_TOO_LARGE"),
        ({"size": "10"}, "BAD_USER_INPUT"),
        ({"size": 1.5}, "BAD_USER_INPUT"),
        ({"size": True}, "BAD_USER_INPUT"),
        ({"size": None}, "BAD_USER_INPUT"),
        ({"sha256": sha(GOOD).upper()}, "BAD_USER_INPUT"),
        ({"sha256": sha(GOOD)[:-1]}, "BAD_USER_INPUT"),
        ({"sha256": ""}, "BAD_USER_INPUT"),
        ({"sha256": "z" * 64}, "BAD_USER_INPUT"),
        ({"content": "aGVsbG8="}, "BAD_USER_INPUT"),  # base64 in JSON is not an upload
    ],
    ids=lambda v: repr(v)[:40],
)
def test_declared_file_does_not_match(world, as_user, change, code):
    inputs, uploads = file_inputs({"a.txt": GOOD})
    inputs[0].update(change)
    if "content" in change:
        uploads = None
    assert world(release_raw(as_user("ins"), inputs, uploads)) == code


def test_content_left_out_for_unknown_hash(world, as_user):
    inputs, _ = file_inputs({"a.txt": b"never uploaded"}, send=False)
    assert world(release_raw(as_user("ins"), inputs)) == "BAD_USER_INPUT"


def multipart(operations: str | bytes, file_map: str | bytes, files: dict[str, bytes],
              boundary: str = "XyZ") -> bytes:
    def part(name: str, value: bytes, filename: str | None = None) -> bytes:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        return f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode() + value + b"\r\n"

    enc = lambda v: v if isinstance(v, bytes) else v.encode()  # noqa: E731
    body = part("operations", enc(operations)) + part("map", enc(file_map))
    for key, content in files.items():
        body += part(key, content, "f.bin")
    return body + f"--{boundary}--\r\n".encode()


def post_multipart(app, body: bytes, token: str = "ins", boundary: str = "XyZ", **kw):
    return app.test_client().post(
        "/graphql",
        data=body,
        headers={"Authorization": f"token {token}", **kw.pop("headers", {})},
        content_type=kw.pop("content_type", f"multipart/form-data; boundary={boundary}"),
        **kw,
    )


def release_operations(files: list[dict]) -> str:
    return json.dumps({"query": RELEASE, "variables": {
        "c": "c1", "n": "ps2", "files": files, "force": False, "due": None}})


def good_upload() -> tuple[str, str, dict[str, bytes]]:
    inputs, _ = file_inputs({"a.txt": GOOD})
    return release_operations(inputs), json.dumps({"0": ["variables.files.0.content"]}), {
        "0": GOOD}


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.9, 0.99])
def test_truncated_multipart_body(world, app, cut):
    body = multipart(*good_upload())
    response = post_multipart(app, body[: int(len(body) * cut)])
    world(response)


def test_multipart_body_shorter_than_its_content_length(world, app):
    body = multipart(*good_upload())
    response = post_multipart(
        app, body[:-40], headers={"Content-Length": str(len(body))}
    )
    world(response)


def test_a_multipart_preamble_longer_than_the_read_buffer(world, app):
    body = b"p" * (2 * 1024 * 1024) + b"\r\n" + multipart(*good_upload())
    world(post_multipart(app, body))


@pytest.mark.parametrize(
    ("operations", "file_map"),
    [
        ("{not json", '{"0": ["variables.files.0.content"]}'),
        ("[]", "{}"),
        ("null", "{}"),
        (None, "not json"),
        (None, '{"0": ["variables.nothing.here"]}'),
        (None, '{"0": ["variables.c"]}'),  # a file where a String goes
        (None, '{"9": ["variables.files.0.content"]}'),  # a part that was never sent
        (None, '{"0": "variables.files.0.content"}'),
        (None, "[]"),
        (None, '{"0": [5]}'),
    ],
)
def test_broken_multipart_structure(world, app, operations, file_map):
    ops, _, files = good_upload()
    world(post_multipart(app, multipart(operations or ops, file_map, files)))


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("text/plain", b'{"query": "{ me { name } }"}'),
        ("application/xml", b"<query/>"),
        ("application/x-www-form-urlencoded", b"query=%7Bme%7Bname%7D%7D"),
        ("multipart/form-data", b"no boundary"),
        ("multipart/form-data; boundary=XyZ", b"garbage without parts"),
        ("application/json; charset=latin-1", b'{"query": "{ me { name } }"'),
        ("", b"{}"),
    ],
)
def test_wrong_content_types(world, app, content_type, data):
    response = app.test_client().post(
        "/graphql", data=data, content_type=content_type, headers={"Authorization": "token ins"}
    )
    world(response)


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"",
        b"[]",
        b"null",
        b'"a string"',
        b"42",
        b'{"query": 5}',
        b'{"query": null}',
        b'{"query": "{ me { name } }", "variables": "x"}',
        b'{"query": "{ me { name } }", "variables": [1]}',
        b'{"query": "{ me { name } }", "operationName": 7}',
        b'{"query": "{ me { name } }", "operationName": "Nope"}',
        b'{"variables": {}}',
        b"\xff\xfe\x00garbage",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"query": "{ me { name } }", "variables": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    ],
    ids=lambda b: repr(b[:30]),
)
def test_invalid_json(world, app, body):
    response = app.test_client().post(
        "/graphql", data=body, content_type="application/json",
        headers={"Authorization": "token ins"},
    )
    world(response)


BAD_IDS = ["", " ", "x" * 100_000, "a/b", "../c1", "a\nb", "a\x00b", "c1\r\n", "\u202ec1"]


@pytest.mark.parametrize("db_url", BOTH_DATABASES, indirect=True)
@pytest.mark.parametrize("bad", BAD_IDS, ids=lambda v: repr(v[:20]))
def test_invalid_ids(world, as_user, bad):
    admin, ins, s1 = as_user("admin"), as_user("ins"), as_user("s1")
    world(admin.raw("mutation($c: String!) { createCourse(id: $c) { id } }", {"c": bad}))
    world(admin.raw("query($c: String!) { course(id: $c) { id } }", {"c": bad}))
    world(ins.raw('query($a: String!) { course(id: "c1") { assignment(name: $a) { name } } }',
                  {"a": bad}))
    world(release_raw(ins, file_inputs({"a.txt": GOOD})[0], file_inputs({"a.txt": GOOD})[1],
                      name=bad))
    world(ins.raw(
        'mutation($u: String!) { addMembers(courseId: "c1", role: STUDENT, members: [{user: $u}])'
        " { user } }", {"u": bad}))
    world(s1.raw(SUBMIT, {"c": bad, "a": "ps1", "files": [], "ts": None}))
    world(s1.raw(SUBMIT, {"c": "c1", "a": bad, "files": [], "ts": None}))
    world(ins.raw(
        "mutation($s: String!) { releaseFeedback(courseId: \"c1\", assignment: \"ps1\", "
        "feedback: [{student: $s, notebook: \"nb\", files: []}]) { id } }", {"s": bad}))
    world(ins.raw(
        'query($s: String) { course(id: "c1") { assignment(name: "ps1") '
        "{ submissions(filter: {student: $s}) { id } } } }", {"s": bad}))


@pytest.mark.parametrize("db_url", BOTH_DATABASES, indirect=True)
def test_nul_in_query_literals(world, as_user):
    """PostgreSQL refuses NUL in text: without a check at the door, a 500."""
    ins = as_user("ins")
    world(ins.raw('{ course(id: "c1\\u0000") { id } }'))
    world(ins.raw('{ events(courseId: "c1", actor: "a\\u0000") { actor } }'))
    world(ins.raw('{ course(id: "c1") { assignment(name: "\\u0000") { name } } }'))
    world(ins.raw('query($a: String) { events(courseId: "c1", actor: $a) { actor } }',
                  {"a": "x\x00"}))


@pytest.mark.parametrize("bad", ["0", "-1", "99999999999999999999999", "abc", "1%00", "..%2f1"])
def test_invalid_file_ids(world, app, bad):
    response = app.test_client().get(f"/files/{bad}", headers={"Authorization": "token ins"})
    assert response.status_code == 404, response.status_code


def test_very_deep_queries(world, as_user):
    ins = as_user("ins")
    deep = '{ course(id: "c1") { assignments { submissions { feedback { files { path } } } } } }'
    assert ins(deep)  # a legitimately deep query still works
    nested = "fields { type { " * 30 + "name" + " } }" * 30
    introspection = "{ __schema { types { " + nested + " } } }"
    world(ins.raw(introspection))
    braces = "{ me " + "{ name " * 20_000 + "}" * 20_000 + " }"
    world(ins.raw(braces))
    fragments = "query { ...F0 } " + " ".join(
        f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(500)
    ) + " fragment F500 on Query { me { name } }"
    world(ins.raw(fragments))
    cycle = "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }"
    world(ins.raw(cycle))


def test_thousand_aliases(world, as_user):
    query = "{ " + " ".join(f"a{i}: me {{ name }}" for i in range(1000)) + " }"
    world(as_user("s1").raw(query))
    batched = "{ " + " ".join("me { name }" for _ in range(5000)) + " }"
    world(as_user("s1").raw(batched))


@pytest.mark.parametrize("db_url", BOTH_DATABASES, indirect=True)
def test_huge_variable_lists(world, as_user):
    """Over the limit: refused before the database sees it (PostgreSQL binds at most
    65,535 parameters, SQLite 32,766)."""
    ins = as_user("ins")
    for n in (5001, 200_000):
        hashes = [f"{i:064x}" for i in range(n)]
        world(ins.raw(
            'query($h: [String!]!) { missingContent(courseId: "c1", sha256: $h) }', {"h": hashes}
        ))
        members = [{"user": f"u{i}"} for i in range(n)]
        world(ins.raw(
            'mutation($m: [MemberInput!]!) { addMembers(courseId: "c1", role: STUDENT, '
            "members: $m) { user } }", {"m": members}))
        files = [{"path": f"f{i}", "sha256": sha(GOOD), "size": len(GOOD)} for i in range(n)]
        world(release_raw(ins, files))
        world(ins.raw('mutation($u: [String!]!) { removeMembers(courseId: "c1", users: $u) }',
                      {"u": [f"x{i}" for i in range(n)]}))


@pytest.mark.parametrize("db_url", BOTH_DATABASES, indirect=True)
def test_lists_at_the_limit_work(app, course, as_user):
    ins = as_user("ins")
    hashes = [f"{i:064x}" for i in range(5000)]
    assert ins('query($h: [String!]!) { missingContent(courseId: "c1", sha256: $h) }',
               {"h": hashes})["missingContent"] == hashes
    members = [{"user": f"u{i}"} for i in range(5000)]
    assert len(ins('mutation($m: [MemberInput!]!) { addMembers(courseId: "c1", role: STUDENT, '
                   "members: $m) { user } }", {"m": members})["addMembers"]) == 5000
    assert ins('mutation($u: [String!]!) { removeMembers(courseId: "c1", users: $u) }',
               {"u": [m["user"] for m in members]})["removeMembers"] == 5000


def test_oversized_json_body(world, app):
    body = b'{"query": "{ me { name } }", "variables": {"x": "' + b"a" * (17 * 2**20) + b'"}}'
    response = app.test_client().post(
        "/graphql", data=body, content_type="application/json",
        headers={"Authorization": "token ins"},
    )
    assert world(response, status=413) == "PAYLOAD_TOO_LARGE"


def test_mutation_over_get_is_refused(world, app):
    response = app.test_client().get(
        "/graphql",
        query_string={"query": 'mutation { createCourse(id: "via-get") { id } }'},
        headers={"Authorization": "token admin"},
    )
    world(response)


@pytest.mark.parametrize(
    "token", ["", "   ", "x" * 100_000, "tok\x7f", "\u00fc", "a b c", "token token", "\u2028"],
    ids=lambda t: repr(t[:12]),
)
def test_malformed_tokens_are_unauthenticated(tmp_path, token):
    """Not a hub outage (HUB_UNAVAILABLE would make clients retry), not a 500."""
    with FakeHub({"good": {"name": "s1"}}) as hub:
        app = create_app(Settings(database_url=database_url(tmp_path), auth="hub",
                                  hub_api_url=hub.api_url))
        reset_database(app)
        for scheme in ("token", "Bearer"):
            response = app.test_client().post(
                "/graphql", json={"query": "{ me { name } }"},
                headers={"Authorization": f"{scheme} {token}"},
            )
            assert response.status_code == 200
            assert response.get_json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
