"""SQL statements per GraphQL operation are pinned: an N+1 fails here."""

from __future__ import annotations

import contextlib
import os
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from ngshare_gql.extensions import db
from ngshare_gql.models import Event
from tests.conftest import RELEASE, file_inputs, release, submit

LISTING = """{ course(id: "c1") { assignments { name files { path } submissions {
  student timestamp files { path size sha256 url } feedback { notebook files { path } } } } } }"""


@contextlib.contextmanager
def count_statements(app, parameters: list | None = None):
    """The statements the app's engine executes meanwhile; their parameters go to
    ``parameters`` when given."""
    statements: list[str] = []

    def record(conn, cursor, statement, params, context, executemany):
        statements.append(statement)
        if parameters is not None:
            parameters.append(params)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def enrol_and_submit(as_user, n: int, assignments: tuple[str, ...] = ("ps1",)) -> None:
    students = [f"st{i:03d}" for i in range(n)]
    as_user("ins")(
        """mutation($m: [MemberInput!]!) {
             addMembers(courseId: "c1", role: STUDENT, members: $m) { user } }""",
        {"m": [{"user": s} for s in students]},
    )
    html = b"<html/>"
    inputs, _ = file_inputs({"a.html": html})
    for name in assignments:
        for s in students:
            submit(as_user(s), "c1", name, {"a.ipynb": s.encode(), "b.txt": b"b", "c.csv": b"c"})
        as_user("ins")(
            """mutation($a: String!, $f: [FeedbackInput!]!) { releaseFeedback(courseId: "c1",
               assignment: $a, feedback: $f) { id } }""",
            {"a": name, "f": [{"student": s, "notebook": "a", "files": inputs} for s in students]},
            {"f.0.files.0.content": html},  # sent once, used for every student
        )


@pytest.mark.parametrize(("students", "assignments"), [(5, 1), (5, 4), (100, 2)])
def test_listing_submissions_costs_constant_statements(
    app, as_user, course, students, assignments
):
    names = tuple(f"ps{i}" for i in range(1, assignments + 1))
    for name in names:
        release(as_user("ins"), "c1", name, {"a.ipynb": b"{}", "b.txt": b"b", "c.csv": b"c"})
    release(as_user("ins"), "c1", "empty", {"a.ipynb": b"{}"})  # nobody submitted to it
    enrol_and_submit(as_user, students, names)
    with count_statements(app) as statements:
        data = as_user("ins")(LISTING)
    listed = {a["name"]: a["submissions"] for a in data["course"]["assignments"]}
    assert listed.pop("empty") == []
    assert sorted(listed) == sorted(names)
    for found in listed.values():
        assert sorted(s["student"] for s in found) == [f"st{i:03d}" for i in range(students)]
        assert all(len(s["files"]) == 3 and len(s["feedback"]) == 1 for s in found)
    # the course with the caller's roles, the assignments with their files; for all the
    # assignments at once: submissions, their files, their feedback, its files.
    assert len(statements) == 3 + 4, "\n".join(statements)


def test_an_assignments_feedback_is_listed_for_all_assignments_at_once(app, as_user, course):
    names = ("ps1", "ps2", "ps3")
    for name in names:
        release(as_user("ins"), "c1", name, {"a.ipynb": b"{}"})
    enrol_and_submit(as_user, 3, names)
    query = '{ course(id: "c1") { assignments { name feedback { notebook files { path } } } } }'
    with count_statements(app) as statements:
        data = as_user("ins")(query)
    assert {a["name"]: len(a["feedback"]) for a in data["course"]["assignments"]} == dict.fromkeys(
        names, 3
    )
    # course and roles, assignments; for all the assignments: feedback with its
    # submissions, its files.
    assert len(statements) == 2 + 2, "\n".join(statements)
    with count_statements(app) as statements:
        data = as_user("st001")(query)
    assert [len(a["feedback"]) for a in data["course"]["assignments"]] == [1, 1, 1]
    assert len(statements) == 2 + 2, "\n".join(statements)


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


def test_a_release_costs_fixed_statements_per_file(app, as_user, course):
    """The course with the caller's roles, the assignment row (insert, lock), the old
    files (hashes, delete), the update, the event: 7. Per new content on the sql store:
    the blob row (an insert, which holds it: no lock) and its chunks (count, delete,
    insert). Per content already stored: the blob row (insert, ignored; the lock, which
    SQLite takes with an extra write) and its chunks (count).
    The file rows: one INSERT each on SQLite, one for all on PostgreSQL. Collecting a
    replaced content: 3. The assignment's old file list is never loaded."""
    with app.app_context():
        sqlite = db.engine.dialect.name == "sqlite"
    cases = (
        ("ps1", {"a.ipynb": b"x1"}, 1, 0),
        ("ps1", {"a": b"x2", "b": b"y2", "c": b"z2"}, 3, 1),
        ("ps2", {"a": b"x2", "d": b"w3"}, 1, 0),
    )
    for name, files, new, replaced in cases:
        with count_statements(app) as statements:
            release(as_user("ins"), "c1", name, files, force=True)
        reused = len(files) - new
        file_rows = len(files) if sqlite else 1
        expected = 7 + 4 * new + (4 if sqlite else 3) * reused + file_rows + 3 * replaced
        assert len(statements) == expected, "\n".join(statements)
        assert not any(s.startswith("SELECT file.") for s in statements), "\n".join(statements)


def test_files_with_and_without_a_modification_time_are_stored_together(app, as_user, course):
    """The file rows of a release whose files alternate between giving modifiedAt and
    not: as many INSERTs as files that all give it (one on PostgreSQL), never one per
    change between the two."""
    with app.app_context():
        sqlite = db.engine.dialect.name == "sqlite"
    files = {f"f{i}.txt": f"{i}".encode() for i in range(6)}
    for name, every in (("all", True), ("mixed", False)):
        inputs, uploads = file_inputs(files)
        for i, spec in enumerate(inputs):
            if every or i % 2:
                spec["modifiedAt"] = "2001-02-03T04:05:06+00:00"
        variables = {"c": "c1", "n": name, "files": inputs, "force": False, "due": None,
                     "folders": None}
        with count_statements(app) as statements:
            as_user("ins")(RELEASE, variables, uploads)
        inserts = [s for s in statements if s.startswith("INSERT INTO file ")]
        assert len(inserts) == (len(files) if sqlite else 1), "\n".join(inserts)


COURSES = "{ courses { id myRoles assignments { name } } }"


@pytest.mark.parametrize("courses", [1, 4])
def test_listing_my_courses_and_their_assignments_costs_two_statements(app, as_user, courses):
    """The courses with the caller's roles, then the assignments of all of them: as many
    courses as there are, as an instructor in some and a student in the others."""
    admin = as_user("admin")
    for i in range(courses):
        cid = f"k{i}"
        admin("mutation($c: String!) { createCourse(id: $c) { id } }", {"c": cid})
        role = "INSTRUCTOR" if i % 2 else "STUDENT"
        admin(
            """mutation($c: String!, $r: Role!) { addMembers(courseId: $c, role: $r,
               members: [{user: "pat"}, {user: "ins"}]) { user } }""",
            {"c": cid, "r": role},
        )
        admin(
            """mutation($c: String!) { addMembers(courseId: $c, role: INSTRUCTOR,
               members: [{user: "ins"}]) { user } }""",
            {"c": cid},
        )
        release(as_user("ins"), cid, "ps1", {"a.ipynb": b"{}"})
        as_user("ins")(  # unreleased: only instructors see it
            """mutation($c: String!) { releaseAssignment(courseId: $c, name: "draft",
               files: []) { name } }""",
            {"c": cid},
        )
        as_user("ins")(
            'mutation($c: String!) { unreleaseAssignment(courseId: $c, name: "draft") '
            "{ released } }",
            {"c": cid},
        )
    with count_statements(app) as statements:
        listed = as_user("pat")(COURSES)["courses"]
    assert len(statements) == 2, "\n".join(statements)
    for i, course in enumerate(listed):
        names = [a["name"] for a in course["assignments"]]
        assert names == (["draft", "ps1"] if i % 2 else ["ps1"]), (course, i)
    with count_statements(app) as statements:
        assert as_user("nobody")(COURSES)["courses"] == []
    assert len(statements) == 1, "\n".join(statements)


def test_what_a_student_does_costs_pinned_statements(app, as_user, course):
    """What benchmark W2 measures, per student: fetch (course with roles, assignment and
    its files, the event), ask which contents to send (course with roles, the hashes),
    submit one new file: course with roles, assignment, submission, file row, event, and
    the new content as in a release (above; these tests use the sql store)."""
    release(as_user("ins"), "c1", "ps1", {"a.ipynb": b"{}", "data/d.bin": b"data"})
    s1 = as_user("s1")
    fetch = 'mutation { fetchAssignment(courseId: "c1", name: "ps1") { files { path url } } }'
    missing = 'query($h: [String!]!) { missingContent(courseId: "c1", sha256: $h) }'
    for _ in range(2):  # the same the second time
        with count_statements(app) as statements:
            assert len(s1(fetch)["fetchAssignment"]["files"]) == 2
        assert len(statements) == 4, "\n".join(statements)
        with count_statements(app) as statements:
            assert s1(missing, {"h": ["0" * 64]})["missingContent"] == ["0" * 64]
        assert len(statements) == 2, "\n".join(statements)
        with count_statements(app) as statements:
            submit(s1, "c1", "ps1", {"a.ipynb": os.urandom(64)})
        assert len(statements) == 5 + 4, "\n".join(statements)


def test_a_long_audit_log_is_read_by_index(app, as_user, course):
    """A course's log grows by a few events per student and assignment.  An instructor's
    page of it, newest first, starts after the course id's last deletion (the old
    cohort's stays hidden): the planner finds both by index, without sorting the log or
    reading the old cohort's part of it."""
    actions = ("assignment.fetched", "submission.created", "submission.collected")
    last_term = datetime(2025, 11, 1)
    with app.app_context():
        db.session.execute(sa.insert(Event), [
            {"actor": f"s{i % 300}", "action": actions[i % 3], "course_id": "c1",
             "assignment": f"ps{i % 10}", "at": last_term + timedelta(seconds=i)}
            for i in range(20_000)
        ])
        db.session.add(Event(actor="admin", action="course.deleted", course_id="c1",
                             at=last_term + timedelta(days=60)))
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
    release(as_user("ins"), "c1", "ps1", {"a.ipynb": b"{}"})  # this term's log
    query = '{ events(courseId: "c1") { action } }'
    assert [e["action"] for e in as_user("ins")(query)["events"]] == ["assignment.released"]
    assert len(as_user("admin")(query)["events"]) == 100  # admins read the old log too
    sqlite = app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    for caller in (as_user("ins"), as_user("admin")):
        plan = query_plan(app, lambda c=caller: c(query), "ORDER BY event.at DESC")
        assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan  # no sort
        assert "SCAN event" not in plan and "Seq Scan" not in plan, plan  # nor whole log
        newest_first = (
            "SEARCH event USING INDEX ix_event_course_id_at (course_id=?"
            if sqlite else "Index Scan Backward using ix_event_course_id_at on event "
        )
        assert newest_first in plan, plan
    # The instructor's page starts at the last deletion, found by index.
    plan = query_plan(app, lambda: as_user("ins")(query), "ORDER BY event.at DESC")
    assert "ix_event_course_id_action" in plan, plan
    bounded = "(course_id=? AND at>?)" if sqlite else "AND (at >= COALESCE("
    assert bounded in plan, plan


def query_plan(app, run, marker: str) -> str:
    """The plan of the last statement containing ``marker`` that ``run`` executes."""
    parameters: list = []
    with count_statements(app, parameters) as statements:
        run()
    executed = zip(statements, parameters, strict=True)
    statement, params = [(s, p) for s, p in executed if marker in s][-1]
    with app.app_context():
        engine = db.engine
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
        cursor.execute(explain + statement, params)
        return "\n".join(str(row) for row in cursor.fetchall())
    finally:
        connection.close()
