"""Shared fixtures: an app on a fresh database, and a GraphQL helper per user."""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from ngshare_gql import create_app
from ngshare_gql.config import Settings
from ngshare_gql.extensions import db
from tests.servers import (
    PostgresUnavailable,
    create_database,
    moto_server,
    postgres_bindir,
    postgres_cluster,
)


def database_url(tmp_path) -> str:
    """SQLite by default; ``NGSHARE_TEST_DATABASE_URL`` runs the suite on PostgreSQL."""
    base = os.environ.get("NGSHARE_TEST_DATABASE_URL")
    return base or f"sqlite:///{tmp_path}/test.db"


def reset_database(app) -> None:
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            tables = list(db.metadata.tables)
            if set(sa.inspect(db.engine).get_table_names()) >= set(tables):
                # Emptying the tables is much faster than recreating them for each test.
                names = ", ".join(f'"{name}"' for name in tables)
                db.session.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
                db.session.commit()
                return
            db.session.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.session.commit()
        db.create_all()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster for the whole session (tests/servers.py).

    Without PostgreSQL installed the tests that need it are skipped with a warning
    on a developer's machine, and fail in CI, where the test command installs it."""
    try:
        postgres_bindir()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        warnings.warn(f"PostgreSQL tests SKIPPED: {exc}", stacklevel=1)
        pytest.skip(str(exc))
    with postgres_cluster() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_test_db(postgres_server) -> str:
    """The database the app-level tests share on PostgreSQL (reset per test)."""
    return create_database(postgres_server, "ngshare_test")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 stand-in for the session (tests/servers.py); its endpoint URL."""
    with moto_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """Every app-level test runs on SQLite and again on PostgreSQL."""
    if request.param == "sqlite":
        return database_url(tmp_path)
    return request.getfixturevalue("postgres_test_db")


@pytest.fixture
def settings(db_url) -> Settings:
    return Settings(
        database_url=db_url,
        auth="dev",
        admins=("admin",),
        blob_store="sql",
    )


@pytest.fixture
def app(settings, tmp_path):
    app = create_app(settings)
    app.instance_path = str(tmp_path)
    reset_database(app)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class GQL:
    """Runs GraphQL operations through the Flask test client as one user."""

    def __init__(self, client, token: str | None, path: str = "/graphql") -> None:
        self.client = client
        self.token = token
        self.path = path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"} if self.token else {}

    def raw(self, query: str, variables: dict | None = None, files: dict | None = None):
        if not files:
            return self.client.post(
                self.path, json={"query": query, "variables": variables or {}}, headers=self.headers
            )
        file_map = {str(i): [f"variables.{p}"] for i, p in enumerate(files)}
        data = {
            "operations": json.dumps({"query": query, "variables": variables}),
            "map": json.dumps(file_map),
        }
        for i, content in enumerate(files.values()):
            data[str(i)] = (io.BytesIO(content), "upload.bin")
        return self.client.post(
            self.path, data=data, headers=self.headers, content_type="multipart/form-data"
        )

    def __call__(self, query: str, variables: dict | None = None, files: dict | None = None):
        """The ``data`` of a successful operation; fails the test on errors."""
        response = self.raw(query, variables, files)
        body = response.get_json()
        assert body is not None, response.data[:500]
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def error(self, query: str, variables: dict | None = None, files: dict | None = None) -> str:
        """The error code of an operation that must fail."""
        response = self.raw(query, variables, files)
        body = response.get_json()
        assert body and body.get("errors"), f"expected an error, got {body}"
        return body["errors"][0]["extensions"]["code"]


@pytest.fixture
def as_user(app):
    client = app.test_client()

    def make(token: str | None) -> GQL:
        return GQL(client, token)

    return make


def file_inputs(files: dict[str, bytes], send: bool = True) -> tuple[list[dict], dict]:
    """FileInput variables and the multipart uploads for ``{path: bytes}``."""
    inputs, uploads = [], {}
    for i, (path, content) in enumerate(files.items()):
        inputs.append({"path": path, "sha256": sha(content), "size": len(content), "content": None})
        if send:
            uploads[f"files.{i}.content"] = content
    return inputs, uploads


RELEASE = """
mutation($c: String!, $n: String!, $files: [FileInput!]!, $force: Boolean!, $due: DateTime,
         $folders: [String!]) {
  releaseAssignment(courseId: $c, name: $n, files: $files, force: $force, dueAt: $due,
                    folders: $folders) {
    name released files { path size sha256 url } folders
  }
}"""

SUBMIT = """
mutation($c: String!, $a: String!, $files: [FileInput!]!, $ts: String, $folders: [String!]) {
  submitAssignment(courseId: $c, assignment: $a, files: $files, timestamp: $ts,
                   folders: $folders) {
    id student timestamp late files { path sha256 url } folders
  }
}"""

RELEASE_FEEDBACK = """mutation($c: String!, $a: String!, $f: [FeedbackInput!]!) {
  releaseFeedback(courseId: $c, assignment: $a, feedback: $f) { student timestamp }
}"""


@pytest.fixture
def course(as_user):
    """Course ``c1`` with instructor ``ins`` and students ``s1``, ``s2``; ``d1`` with
    instructor ``ins2`` and student ``t1``."""
    admin = as_user("admin")
    for cid, ins, students in (("c1", "ins", ["s1", "s2"]), ("d1", "ins2", ["t1"])):
        admin("mutation($c: String!) { createCourse(id: $c) { id } }", {"c": cid})
        add = """mutation($c: String!, $r: Role!, $m: [MemberInput!]!) {
            addMembers(courseId: $c, role: $r, members: $m) { user } }"""
        admin(add, {"c": cid, "r": "INSTRUCTOR", "m": [{"user": ins}]})
        admin(add, {"c": cid, "r": "STUDENT", "m": [{"user": s} for s in students]})
    return "c1"


def release(
    gql: GQL,
    course_id: str,
    name: str,
    files: dict[str, bytes],
    force=False,
    due=None,
    folders=None,
):
    inputs, uploads = file_inputs(files)
    variables = {
        "c": course_id, "n": name, "files": inputs, "force": force, "due": due,
        "folders": folders,
    }  # fmt: skip
    return gql(RELEASE, variables, uploads)["releaseAssignment"]


def submit(
    gql: GQL,
    course_id: str,
    name: str,
    files: dict[str, bytes],
    ts=None,
    send=True,
    folders=None,
):
    inputs, uploads = file_inputs(files, send)
    variables = {"c": course_id, "a": name, "files": inputs, "ts": ts, "folders": folders}
    return gql(SUBMIT, variables, uploads)["submitAssignment"]


def release_feedback(
    gql: GQL, course_id: str, assignment: str, student: str, timestamp: str, html: bytes
) -> list[dict]:
    """Feedback ``html`` on notebook ``a`` of ``student``'s submission at ``timestamp``."""
    inputs, uploads = file_inputs({"a.html": html})
    spec = {"student": student, "notebook": "a", "timestamp": timestamp, "files": inputs}
    variables = {"c": course_id, "a": assignment, "f": [spec]}
    return gql(RELEASE_FEEDBACK, variables, {"f.0.files.0.content": uploads["files.0.content"]})[
        "releaseFeedback"
    ]
