"""SQL statements per GraphQL operation are pinned: an N+1 fails here."""

from __future__ import annotations

import contextlib

import pytest
import sqlalchemy as sa

from ngshare_gql.extensions import db
from tests.conftest import file_inputs, release, submit

LISTING = """{ course(id: "c1") { assignments { name files { path } submissions {
  student timestamp files { path size sha256 url } feedback { notebook files { path } } } } } }"""


@contextlib.contextmanager
def count_statements(app):
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def enrol_and_submit(as_user, n: int) -> None:
    students = [f"st{i:03d}" for i in range(n)]
    as_user("ins")(
        """mutation($m: [MemberInput!]!) {
             addMembers(courseId: "c1", role: STUDENT, members: $m) { user } }""",
        {"m": [{"user": s} for s in students]},
    )
    for s in students:
        submit(as_user(s), "c1", "ps1", {"a.ipynb": s.encode(), "b.txt": b"b", "c.csv": b"c"})
    html = b"<html/>"
    inputs, _ = file_inputs({"a.html": html})
    as_user("ins")(
        """mutation($f: [FeedbackInput!]!) { releaseFeedback(courseId: "c1", assignment: "ps1",
           feedback: $f) { id } }""",
        {"f": [{"student": s, "notebook": "a", "files": inputs} for s in students]},
        {"f.0.files.0.content": html},  # sent once, used for every student
    )


@pytest.mark.parametrize("students", [5, 100])
def test_listing_submissions_costs_constant_statements(app, as_user, course, students):
    release(as_user("ins"), "c1", "ps1", {"a.ipynb": b"{}", "b.txt": b"b", "c.csv": b"c"})
    release(as_user("ins"), "c1", "ps2", {"a.ipynb": b"{}"})
    enrol_and_submit(as_user, students)
    with count_statements(app) as statements:
        data = as_user("ins")(LISTING)
    submissions = data["course"]["assignments"][0]["submissions"]
    assert len(submissions) == students
    assert all(len(s["files"]) == 3 and len(s["feedback"]) == 1 for s in submissions)
    # course, roles, assignments + their files; ps1: submissions, their files, feedback,
    # feedback files; ps2 (no submissions): one query, nothing further to load.
    assert len(statements) == 4 + 4 + 1, "\n".join(statements)


def test_collect_costs_constant_statements(app, as_user, course):
    release(as_user("ins"), "c1", "ps1", {"a.ipynb": b"{}"})
    enrol_and_submit(as_user, 30)
    with count_statements(app) as statements:
        data = as_user("ins")(
            'mutation { collectSubmissions(courseId: "c1", assignment: "ps1") '
            "{ student files { path url } } }"
        )
    assert len(data["collectSubmissions"]) == 30
    # roles, course, assignment, submissions, files, update, event insert (+ commit)
    assert len(statements) <= 8, "\n".join(statements)


def test_student_listing_is_constant_too(app, as_user, course):
    release(as_user("ins"), "c1", "ps1", {"a.ipynb": b"{}"})
    enrol_and_submit(as_user, 10)
    with count_statements(app) as statements:
        data = as_user("st003")(LISTING)
    (assignment,) = data["course"]["assignments"]
    assert [s["student"] for s in assignment["submissions"]] == ["st003"]
    assert len(statements) <= 8, "\n".join(statements)


def test_a_download_costs_two_statements_whatever_the_file(app, as_user, course):
    """The file with its course and owner in one statement, then the caller's roles."""
    release(as_user("ins"), "c1", "ps1", {"a.ipynb": b"{}"})
    enrol_and_submit(as_user, 1)  # st000 submits, and gets feedback
    data = as_user("ins")(LISTING)["course"]["assignments"][0]
    released_url = as_user("st000")(
        '{ course(id: "c1") { assignment(name: "ps1") { files { url } } } }'
    )["course"]["assignment"]["files"][0]["url"]
    submission = data["submissions"][0]
    submitted_url = submission["files"][0]["url"]
    feedback_url = as_user("st000")(
        '{ course(id: "c1") { assignment(name: "ps1") '
        "{ submissions { feedback { files { url } } } } } }"
    )["course"]["assignment"]["submissions"][0]["feedback"][0]["files"][0]["url"]
    client = app.test_client()
    for user in ("ins", "st000"):
        for url in (released_url, submitted_url, feedback_url):
            with count_statements(app) as statements:
                response = client.get(url, headers={"Authorization": f"token {user}"})
            assert response.status_code == 200, (user, url)
            response.close()
            # the file with its course and owner, the caller's roles, (sql store) the bytes
            assert len(statements) <= 3, "\n".join(statements)
    with count_statements(app) as statements:
        refused = client.get(submitted_url, headers={"Authorization": "token st001"})
    assert refused.status_code == 404 and len(statements) <= 2


def test_a_release_costs_fixed_statements_per_new_file(app, as_user, course):
    """Course, roles, the assignment row (insert, lock), the old files (hashes, delete),
    the update, the event: 8. Per new content on the sql store: the blob row (insert,
    lock: SQLite takes it with an extra write) and its chunks (count, delete, insert).
    The file rows: one INSERT each on SQLite, one for all on PostgreSQL. Collecting a
    replaced content: 3. The assignment's old file list is never loaded."""
    with app.app_context():
        sqlite = db.engine.dialect.name == "sqlite"
    for files, replaced in (({"a.ipynb": b"x1"}, 0), ({"a": b"x2", "b": b"y2", "c": b"z2"}, 1)):
        with count_statements(app) as statements:
            release(as_user("ins"), "c1", "ps1", files, force=True)
        per_content = 6 if sqlite else 5
        file_rows = len(files) if sqlite else 1
        expected = 8 + per_content * len(files) + file_rows + 3 * replaced
        assert len(statements) == expected, "\n".join(statements)
        assert not any(s.startswith("SELECT file.") for s in statements), "\n".join(statements)
