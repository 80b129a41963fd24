"""The authorization matrix: every field and mutation of the schema × every kind of caller.

The rows come from introspecting the Strawberry schema, so a new query field,
nested field or mutation without a rule here fails ``test_every_field_has_a_rule``.
Leaf fields (scalars without arguments) inherit the rule of the path that reaches
their type (``TYPE_PATHS``); every other field has its own rule in ``RULES``.

Columns: no token, a token the hub rejects, an admin, the instructor of course C,
a student of C (``s1``, the owner of the data), another student of C asking for
``s1``'s data, the instructor of course D, a student of D, a user in no course,
and the nbexchange hole: a user who is instructor of D and student of C (once by
roster, once by hub groups) must get nothing a student of C would not.

Identity is real: the service asks a :class:`FakeHub` with each caller's token.
Every cell checks the error code, that a denied mutation changed no row, and that
no response carries data the caller may not see (``LEAKS``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import graphql
import pytest
import sqlalchemy as sa

from ngshare_gql import create_app
from ngshare_gql.config import Settings
from ngshare_gql.extensions import db
from ngshare_gql.graphql.schema import schema
from ngshare_gql.models import File
from tests.conftest import GQL, database_url, file_inputs, release, reset_database, sha, submit
from tests.fakehub import FakeHub
from tests.servers import create_database

C, D = "physics-101", "chem-202"
OK, FORBIDDEN, UNAUTH = "ok", "FORBIDDEN", "UNAUTHENTICATED"
NOT_FOUND, BAD = "NOT_FOUND", "BAD_USER_INPUT"

# Actor -> token.  The fake hub maps each token to a user (and for one of them, to groups).
ACTORS = {
    "no_token": None,
    "bad_token": "not-a-valid-token",
    "admin": "tok-admin",
    "instructor_C": "tok-ins",
    "student_C": "tok-s1",
    "other_student_C": "tok-s2",  # asks for s1's data
    "instructor_D": "tok-ins2",
    "student_D": "tok-t1",
    "outsider": "tok-nobody",
    "instructor_D_student_C": "tok-dual",  # the nbexchange hole, by roster
    "instructor_D_student_C_groups": "tok-grp",  # the same hole, by hub groups
}
HUB_USERS = {
    "tok-admin": {"name": "admin"},
    "tok-ins": {"name": "ins"},
    "tok-s1": {"name": "s1"},
    "tok-s2": {"name": "s2"},
    "tok-ins2": {"name": "ins2"},
    "tok-t1": {"name": "t1"},
    "tok-nobody": {"name": "nobody"},
    "tok-dual": {"name": "dual"},
    "tok-grp": {"name": "grp", "groups": [f"formgrade-{D}", f"nbgrader-{C}"]},
}

S1_FILE = b"s1 private answer 6b1d"
S1_FEEDBACK = b"<html>s1 private feedback 90ac</html>"
S1_TS = "s1-private-timestamp"
RELEASED = {"ps1.ipynb": b'{"cells": ["released"]}'}
NEW_FILE = b"a brand new file"

# Strings a response's data must not contain for these callers.
PRIVATE_TO_S1 = (sha(S1_FILE), S1_TS, sha(S1_FEEDBACK))
NOT_S1 = {"other_student_C", "instructor_D", "student_D", "outsider",
          "instructor_D_student_C", "instructor_D_student_C_groups"}
NON_MEMBERS_C = {"instructor_D", "student_D", "outsider"}
STUDENTS_C = {"student_C", "other_student_C", "instructor_D_student_C",
              "instructor_D_student_C_groups"}


def leaks(actor: str) -> list[str]:
    found = []
    if actor in NOT_S1:
        found += PRIVATE_TO_S1
    if actor not in {"admin", "instructor_C"}:
        found.append("hidden-draft")  # an unreleased assignment of C
    if actor in NON_MEMBERS_C:
        found.append(C)
    if actor not in {"admin", "instructor_D", "instructor_D_student_C",
                     "instructor_D_student_C_groups"}:
        found.append("d-secret")  # an unreleased assignment of D
    return found


def expect(allowed: set[str], denied: str = FORBIDDEN, **overrides: str) -> dict[str, str]:
    """Outcome per actor: ``allowed`` get data, other callers ``denied``."""
    outcome = {}
    for actor, token in ACTORS.items():
        if token is None or actor == "bad_token":
            outcome[actor] = UNAUTH
        else:
            outcome[actor] = OK if actor in allowed else denied
    outcome.update(overrides)
    return outcome


ANYONE = set(ACTORS) - {"no_token", "bad_token"}
MEMBERS_C = {"admin", "instructor_C"} | STUDENTS_C
INSTRUCTORS_C = {"admin", "instructor_C"}


@dataclass
class Case:
    """One row: the operation an actor sends, and each actor's outcome."""

    query: str
    outcome: dict[str, str]
    variables: Callable[[str], dict] = lambda actor: {}
    uploads: Callable[[str], dict] = lambda actor: {}
    check: Callable[[str, dict], None] | None = None
    may_echo: set[str] = field(default_factory=set)  # actors whose input is echoed back


def is_other(actor: str) -> bool:
    return actor == "other_student_C"


def s1_if_other(actor: str) -> str | None:
    """The student an actor names: the other student names s1, everyone else nobody."""
    return "s1" if is_other(actor) else None


def upload_vars(content: bytes, path: str = "new.txt") -> tuple[list[dict], dict]:
    return file_inputs({path: content})


def submit_vars(actor: str) -> dict:
    if is_other(actor):
        # Reuse s1's content by hash, without sending it: that would read s1's file.
        return {"files": [{"path": "a.txt", "sha256": sha(S1_FILE), "size": len(S1_FILE)}]}
    return {"files": upload_vars(NEW_FILE, "a.txt")[0]}


def submit_uploads(actor: str) -> dict:
    return {} if is_other(actor) else upload_vars(NEW_FILE, "a.txt")[1]


def missing_check(actor: str, data: dict) -> None:
    if is_other(actor):
        # s1's hash is not s2's to reuse: s2 must send the bytes.
        assert data["missingContent"] == [sha(S1_FILE)]


def courses_check(actor: str, data: dict) -> None:
    ids = {c["id"] for c in data["courses"]}
    assert (C in ids) == (actor in MEMBERS_C), ids


def submissions_check(actor: str, data: dict) -> None:
    subs = data["course"]["assignment"]["submissions"]
    students = {s["student"] for s in subs}
    if actor in INSTRUCTORS_C:
        assert "s1" in students
    elif actor in MEMBERS_C:
        assert students <= {HUB_USERS[ACTORS[actor]]["name"]}


C_ARG = f'"{C}"'
FEEDBACK_VARS = {"student": "s1", "notebook": "nb2", "files": []}

RULES: dict[str, Case] = {
    # --- queries ---------------------------------------------------------------------
    "Query.me": Case("{ me { name admin roles { courseId roles } } }", expect(ANYONE)),
    "Query.courses": Case("{ courses { id title } }", expect(ANYONE), check=courses_check),
    "Query.course": Case(f"{{ course(id: {C_ARG}) {{ id title myRoles }} }}", expect(MEMBERS_C)),
    "Query.missingContent": Case(
        f"query($h: [String!]!) {{ missingContent(courseId: {C_ARG}, sha256: $h) }}",
        expect(MEMBERS_C),
        variables=lambda a: {"h": [sha(S1_FILE) if is_other(a) else sha(NEW_FILE)]},
        check=missing_check,
        may_echo={"other_student_C"},
    ),
    "Query.events": Case(
        f"query($a: String) {{ events(courseId: {C_ARG}, actor: $a) {{ action actor subject }} }}",
        expect(INSTRUCTORS_C),
        variables=lambda a: {"a": s1_if_other(a)},
    ),
    # --- nested fields with their own checks ---------------------------------------------
    "Course.assignments": Case(
        f"{{ course(id: {C_ARG}) {{ assignments {{ name released files {{ path }} }} }} }}",
        expect(MEMBERS_C),
    ),
    "Course.assignment": Case(
        f'{{ course(id: {C_ARG}) {{ assignment(name: "ps1") {{ name }} }} }}', expect(MEMBERS_C)
    ),
    "Course.roster": Case(
        f"{{ course(id: {C_ARG}) {{ roster {{ user role email }} }} }}", expect(INSTRUCTORS_C)
    ),
    "Assignment.files": Case(
        f'{{ course(id: {C_ARG}) {{ assignment(name: "ps1") {{ files {{ path sha256 }} }} }} }}',
        expect(MEMBERS_C),
    ),
    "Assignment.submissions": Case(
        f"""query($s: String) {{ course(id: {C_ARG}) {{ assignment(name: "ps1") {{
            submissions(filter: {{student: $s}}) {{ student timestamp }} }} }} }}""",
        expect(MEMBERS_C, other_student_C=FORBIDDEN),
        variables=lambda a: {"s": s1_if_other(a)},
        check=submissions_check,
    ),
    "Assignment.feedback": Case(
        f"""query($s: String) {{ course(id: {C_ARG}) {{ assignment(name: "ps1") {{
            feedback(student: $s) {{ student files {{ sha256 }} }} }} }} }}""",
        expect(MEMBERS_C, other_student_C=FORBIDDEN),
        variables=lambda a: {"s": s1_if_other(a)},
    ),
    "Submission.files": Case(
        f"""query($s: String) {{ course(id: {C_ARG}) {{ assignment(name: "ps1") {{
            submissions(filter: {{student: $s}}) {{ files {{ path sha256 url }} }} }} }} }}""",
        expect(MEMBERS_C, other_student_C=FORBIDDEN),
        variables=lambda a: {"s": s1_if_other(a)},
    ),
    "Submission.feedback": Case(
        f"""query($s: String) {{ course(id: {C_ARG}) {{ assignment(name: "ps1") {{
            submissions(filter: {{student: $s}}) {{ feedback {{ notebook files {{ sha256 }} }} }}
            }} }} }}""",
        expect(MEMBERS_C, other_student_C=FORBIDDEN),
        variables=lambda a: {"s": s1_if_other(a)},
    ),
    "Feedback.files": Case(
        f"""query($s: String) {{ course(id: {C_ARG}) {{ assignment(name: "ps1") {{
            feedback(student: $s) {{ files {{ sha256 url }} }} }} }} }}""",
        expect(MEMBERS_C, other_student_C=FORBIDDEN),
        variables=lambda a: {"s": s1_if_other(a)},
    ),
    "Me.roles": Case("{ me { roles { courseId roles } } }", expect(ANYONE)),
    # --- mutations ---------------------------------------------------------------------
    "Mutation.createCourse": Case(
        'mutation { createCourse(id: "brand-new", title: "New") { id } }', expect({"admin"})
    ),
    "Mutation.deleteCourse": Case(
        f"mutation {{ deleteCourse(id: {C_ARG}) }}", expect({"admin"})
    ),
    "Mutation.addMembers": Case(
        f'mutation {{ addMembers(courseId: {C_ARG}, role: INSTRUCTOR, members: [{{user: "s2"}}]) '
        "{ user role } }",
        expect(INSTRUCTORS_C),
    ),
    "Mutation.removeMembers": Case(
        f'mutation {{ removeMembers(courseId: {C_ARG}, users: ["s1", "ins"]) }}',
        expect(INSTRUCTORS_C),
    ),
    "Mutation.releaseAssignment": Case(
        f"""mutation($files: [FileInput!]!) {{ releaseAssignment(courseId: {C_ARG}, name: "ps1",
            files: $files, force: true) {{ name files {{ sha256 }} }} }}""",
        expect(INSTRUCTORS_C),
        variables=lambda a: {"files": upload_vars(NEW_FILE)[0]},
        uploads=lambda a: upload_vars(NEW_FILE)[1],
    ),
    "Mutation.unreleaseAssignment": Case(
        f'mutation {{ unreleaseAssignment(courseId: {C_ARG}, name: "ps1") {{ released }} }}',
        expect(INSTRUCTORS_C),
    ),
    "Mutation.fetchAssignment": Case(
        f'mutation {{ fetchAssignment(courseId: {C_ARG}, name: "ps1") {{ files {{ sha256 }} }} }}',
        expect(MEMBERS_C),
    ),
    "Mutation.submitAssignment": Case(
        f"""mutation($files: [FileInput!]!) {{ submitAssignment(courseId: {C_ARG},
            assignment: "ps1", files: $files) {{ student }} }}""",
        expect(STUDENTS_C, other_student_C=BAD),
        variables=submit_vars,
        uploads=submit_uploads,
    ),
    "Mutation.collectSubmissions": Case(
        f"""mutation($s: String) {{ collectSubmissions(courseId: {C_ARG}, assignment: "ps1",
            filter: {{student: $s}}) {{ student files {{ sha256 }} }} }}""",
        expect(INSTRUCTORS_C),
        variables=lambda a: {"s": s1_if_other(a)},
    ),
    "Mutation.removeSubmissions": Case(
        f'mutation {{ removeSubmissions(courseId: {C_ARG}, assignment: "ps1", student: "s1") }}',
        expect(INSTRUCTORS_C),
    ),
    "Mutation.releaseFeedback": Case(
        f"""mutation($f: [FeedbackInput!]!) {{ releaseFeedback(courseId: {C_ARG},
            assignment: "ps1", feedback: $f) {{ student }} }}""",
        expect(INSTRUCTORS_C),
        variables=lambda a: {"f": [FEEDBACK_VARS]},
    ),
    "Mutation.removeFeedback": Case(
        f'mutation {{ removeFeedback(courseId: {C_ARG}, assignment: "ps1", student: "s1") }}',
        expect(INSTRUCTORS_C),
    ),
    "Mutation.fetchFeedback": Case(
        f'mutation {{ fetchFeedback(courseId: {C_ARG}, assignment: "ps1") {{ student files '
        "{ sha256 } } }",
        expect(MEMBERS_C),
    ),
}

# How a query reaches each object type; its leaf fields are asked for at ``{}``.
TYPE_PATHS: dict[str, Case] = {
    "Me": Case("{ me { %s } }", expect(ANYONE)),
    "CourseRoles": Case("{ me { roles { %s } } }", expect(ANYONE)),
    "Course": Case(f"{{ course(id: {C_ARG}) {{ %s }} }}", expect(MEMBERS_C)),
    "Assignment": Case(
        f'{{ course(id: {C_ARG}) {{ assignment(name: "ps1") {{ %s }} }} }}', expect(MEMBERS_C)
    ),
    "File": Case(
        f'{{ course(id: {C_ARG}) {{ assignment(name: "ps1") {{ files {{ %s }} }} }} }}',
        expect(MEMBERS_C),
    ),
    "Submission": Case(
        f"""query($s: String) {{ course(id: {C_ARG}) {{ assignment(name: "ps1") {{
            submissions(filter: {{student: $s}}) {{ %s }} }} }} }}""",
        expect(MEMBERS_C, other_student_C=FORBIDDEN),
        variables=lambda a: {"s": s1_if_other(a)},
    ),
    "Feedback": Case(
        f"""query($s: String) {{ course(id: {C_ARG}) {{ assignment(name: "ps1") {{
            feedback(student: $s) {{ %s }} }} }} }}""",
        expect(MEMBERS_C, other_student_C=FORBIDDEN),
        variables=lambda a: {"s": s1_if_other(a)},
    ),
    "Member": Case(f"{{ course(id: {C_ARG}) {{ roster {{ %s }} }} }}", expect(INSTRUCTORS_C)),
    "Event": Case(f"{{ events(courseId: {C_ARG}) {{ %s }} }}", expect(INSTRUCTORS_C)),
}


def schema_fields() -> dict[str, bool]:
    """Every field of every object type of the API: ``Type.field`` -> is it a plain leaf."""
    fields = {}
    for name, gtype in schema._schema.type_map.items():
        if name.startswith("__") or not isinstance(gtype, graphql.GraphQLObjectType):
            continue
        for fname, fdef in gtype.fields.items():
            leaf = graphql.is_leaf_type(graphql.get_named_type(fdef.type)) and not fdef.args
            fields[f"{name}.{fname}"] = leaf and name not in ("Query", "Mutation")
    return fields


def case_for(key: str) -> Case:
    if key in RULES:
        return RULES[key]
    type_name, fname = key.split(".")
    path = TYPE_PATHS[type_name]
    return Case(
        path.query % fname,
        path.outcome,
        variables=path.variables,
        check=path.check,
    )


def test_every_field_has_a_rule():
    """A new field or mutation fails here until it gets a row of the matrix."""
    fields = schema_fields()
    missing = [k for k, leaf in fields.items() if k not in RULES and not leaf]
    missing += [k for k, leaf in fields.items() if leaf and k.split(".")[0] not in TYPE_PATHS]
    assert not missing, f"no authorization rule for {missing}"
    stale = [k for k in RULES if k not in fields]
    assert not stale, f"rules for fields that no longer exist: {stale}"
    for case in [*RULES.values(), *TYPE_PATHS.values()]:
        assert set(case.outcome) == set(ACTORS)
    # Every query field and mutation is tested allowed for someone and denied for
    # an authenticated caller too (except the caller's own identity, open to all).
    open_to_all = {"Query.me", "Query.courses", "Me.roles"}
    for key in fields:
        outcome = case_for(key).outcome
        assert OK in outcome.values(), f"{key} is allowed to nobody"
        denied = {a for a, o in outcome.items() if o != OK} - {"no_token", "bad_token"}
        if key not in open_to_all and key.split(".")[0] not in ("Me", "CourseRoles"):
            assert denied, f"{key} is denied to no authenticated caller"


# --- the world every cell starts from ---------------------------------------------------


def snapshot() -> dict[str, list[dict]]:
    return {
        t.name: [dict(r) for r in db.session.execute(sa.select(t)).mappings()]
        for t in db.metadata.sorted_tables
    }


def restore(state: dict[str, list[dict]]) -> None:
    db.session.rollback()
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(table.delete())
    for table in db.metadata.sorted_tables:
        if state[table.name]:
            db.session.execute(table.insert(), state[table.name])
    db.session.commit()


def counts() -> dict[str, int]:
    return {
        t.name: db.session.scalar(sa.select(sa.func.count()).select_from(t))
        for t in db.metadata.sorted_tables
    }


@pytest.fixture(scope="module")
def hub():
    with FakeHub(HUB_USERS) as hub:
        yield hub


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, hub, tmp_path_factory):
    """Courses C and D with released work, a submission and feedback of s1, an
    unreleased draft; yields (app, client, snapshot of every table).  The whole
    matrix runs on SQLite and again on PostgreSQL."""
    tmp = tmp_path_factory.mktemp("authz")
    url = database_url(tmp)
    if request.param == "postgresql":
        url = create_database(request.getfixturevalue("postgres_server"), "ngshare_authz")
    settings = Settings(
        database_url=url, auth="hub", hub_api_url=hub.api_url, admins=("admin",),
    )
    app = create_app(settings)
    app.instance_path = str(tmp)
    reset_database(app)
    client = app.test_client()
    admin, ins, ins2 = GQL(client, "tok-admin"), GQL(client, "tok-ins"), GQL(client, "tok-ins2")
    add = (
        "mutation($c: String!, $r: Role!, $m: [MemberInput!]!) "
        "{ addMembers(courseId: $c, role: $r, members: $m) { user } }"
    )
    for cid, instructors, students in ((C, ["ins"], ["s1", "s2", "dual"]),
                                       (D, ["ins2", "dual"], ["t1"])):
        admin("mutation($c: String!) { createCourse(id: $c) { id } }", {"c": cid})
        admin(add, {"c": cid, "r": "INSTRUCTOR", "m": [{"user": u, "email": f"{u}@x"}
                                                          for u in instructors]})
        admin(add, {"c": cid, "r": "STUDENT", "m": [{"user": u} for u in students]})
    release(ins, C, "ps1", RELEASED)
    release(ins, C, "hidden-draft", {"draft.ipynb": b"draft"})
    ins(f'mutation {{ unreleaseAssignment(courseId: "{C}", name: "hidden-draft") {{ name }} }}')
    release(ins2, D, "d-secret", {"d.ipynb": b"d"})
    ins2(f'mutation {{ unreleaseAssignment(courseId: "{D}", name: "d-secret") {{ name }} }}')
    release(ins2, D, "ps1", {"d1.ipynb": b"d1"})
    submit(GQL(client, "tok-s1"), C, "ps1", {"answer.txt": S1_FILE}, ts=S1_TS)
    submit(GQL(client, "tok-s2"), C, "ps1", {"answer.txt": b"s2 answer"})
    submit(GQL(client, "tok-t1"), D, "ps1", {"answer.txt": b"t1 answer"})
    inputs, uploads = file_inputs({"fb.html": S1_FEEDBACK})
    ins(
        f"""mutation($f: [FeedbackInput!]!) {{ releaseFeedback(courseId: "{C}",
        assignment: "ps1", feedback: $f) {{ id }} }}""",
        {"f": [{"student": "s1", "notebook": "nb1", "files": inputs}]},
        {f"f.0.files.{k.split('.', 1)[1]}": v for k, v in uploads.items()},
    )
    with app.app_context():
        state = snapshot()
    yield app, client, state
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def run_cell(world, key: str, actor: str) -> None:
    app, client, state = world
    case = case_for(key)
    gql = GQL(client, ACTORS[actor])
    mutation = key.startswith("Mutation.")
    with app.app_context():
        before = counts()
    response = gql.raw(case.query, case.variables(actor), case.uploads(actor) or None)
    body = response.get_json()
    assert response.status_code < 500 and body is not None, response.data[:300]
    expected = case.outcome[actor]
    try:
        if expected == OK:
            assert not body.get("errors"), body["errors"]
            assert body["data"] is not None
            if case.check:
                case.check(actor, body["data"])
        else:
            assert body.get("errors"), f"{actor} was allowed {key}: {body}"
            assert body["errors"][0]["extensions"]["code"] == expected, body["errors"]
            if mutation:
                with app.app_context():
                    assert counts() == before, f"denied {key} changed the database"
        if actor not in case.may_echo:
            shown = json.dumps(body.get("data"))
            for secret in leaks(actor):
                assert secret not in shown, f"{actor} saw {secret!r} through {key}"
    finally:
        with app.app_context():
            if mutation or counts() != before:
                restore(state)


MATRIX = [(key, actor) for key in sorted(schema_fields()) for actor in ACTORS]


@pytest.mark.parametrize(("key", "actor"), MATRIX, ids=[f"{k}-{a}" for k, a in MATRIX])
def test_matrix(world, key, actor):
    run_cell(world, key, actor)


# --- downloads: the same rules over plain HTTP ---------------------------------------------

def download_status(what: str, actor: str) -> int:
    """Unauthenticated 401; any file you may not read 404, even to non-members of C, so a
    download URL does not tell an outsider that the file exists."""
    if ACTORS[actor] is None or actor == "bad_token":
        return 401
    if actor in NON_MEMBERS_C:
        return 404
    if what == "released" or actor in {"admin", "instructor_C", "student_C"}:
        return 200
    return 404


DOWNLOADS = {"released": sha(RELEASED["ps1.ipynb"]), "s1_submission": sha(S1_FILE),
             "s1_feedback": sha(S1_FEEDBACK)}


@pytest.mark.parametrize("what", sorted(DOWNLOADS))
def test_downloads(world, what):
    app, client, _ = world
    wanted = DOWNLOADS[what]
    with app.app_context():
        file_id = db.session.scalar(sa.select(File.id).where(File.sha256 == wanted))
    for actor, token in ACTORS.items():
        headers = {"Authorization": f"token {token}"} if token else {}
        response = client.get(f"/files/{file_id}", headers=headers)
        assert response.status_code == download_status(what, actor), (actor, response.data[:200])
        if response.status_code == 200:
            assert sha(response.data) == wanted
        else:
            assert wanted.encode() not in response.data
