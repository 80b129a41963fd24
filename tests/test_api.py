"""What each query and mutation does, through the Flask test client.

Who may call what is the authorization matrix's job (test_authz_matrix.py);
here the callers are allowed and the assertions are about behaviour.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ngshare_gql.app import create_app
from ngshare_gql.config import Settings
from ngshare_gql.extensions import db
from ngshare_gql.models import Blob, File, Submission
from tests.conftest import GQL, RELEASE, SUBMIT, file_inputs, release, reset_database, sha, submit

NB = b'{"cells": [], "nbformat": 4}'

SUBMISSIONS = """query($f: SubmissionFilter) { course(id: "c1") { assignment(name: "ps1") {
  submissions(filter: $f) { student timestamp late collectedAt files { path } } } } }"""


def subs(gql, **flt):
    return gql(SUBMISSIONS, {"f": flt})["course"]["assignment"]["submissions"]


def test_me_and_courses(as_user, course):
    me = as_user("ins")("{ me { name admin roles { courseId roles } } }")["me"]
    assert me == {
        "name": "ins",
        "admin": False,
        "roles": [{"courseId": "c1", "roles": ["INSTRUCTOR"]}],
    }
    assert as_user("admin")("{ me { admin } }")["me"]["admin"] is True
    assert [c["id"] for c in as_user("admin")("{ courses { id } }")["courses"]] == ["c1", "d1"]
    assert as_user("s1")("{ courses { id myRoles } }")["courses"] == [
        {"id": "c1", "myRoles": ["STUDENT"]}
    ]
    assert as_user("nobody")("{ courses { id } }")["courses"] == []


def test_release_again_conflicts_unless_forced(as_user, course):
    ins = as_user("ins")
    release(ins, "c1", "ps1", {"a.ipynb": NB, "b.txt": b"b"})
    inputs, uploads = file_inputs({"c.ipynb": b"new"})
    q = """mutation($files: [FileInput!]!) { releaseAssignment(courseId: "c1", name: "ps1",
           files: $files) { name } }"""
    assert ins.error(q, {"files": inputs}, uploads) == "CONFLICT"
    replaced = release(ins, "c1", "ps1", {"c.ipynb": b"new"}, force=True)
    assert [f["path"] for f in replaced["files"]] == ["c.ipynb"]
    listed = as_user("s1")('{ course(id: "c1") { assignment(name: "ps1") { files { path } } } }')
    assert listed["course"]["assignment"]["files"] == [{"path": "c.ipynb"}]


def test_unrelease_hides_from_students_but_keeps_submissions(as_user, course):
    ins, s1 = as_user("ins"), as_user("s1")
    release(ins, "c1", "ps1", {"a.ipynb": NB})
    submit(s1, "c1", "ps1", {"a.ipynb": b"answer"})
    release(ins, "c1", "ps2", {"a.ipynb": NB})
    ins('mutation { unreleaseAssignment(courseId: "c1", name: "ps1") { released } }')
    ins('mutation { unreleaseAssignment(courseId: "c1", name: "ps2") { released } }')
    # s1 still sees ps1 (they submitted to it), with no files; ps2 is gone for students.
    names = s1('{ course(id: "c1") { assignments { name released files { path } } } }')
    assert names["course"]["assignments"] == [{"name": "ps1", "released": False, "files": []}]
    assert (
        as_user("s2")('{ course(id: "c1") { assignments { name } } }')["course"]["assignments"]
        == []
    )
    assert len(subs(ins)) == 1
    assert (
        s1.error('mutation { fetchAssignment(courseId: "c1", name: "ps1") { name } }')
        == "NOT_FOUND"
    )
    q = 'mutation { unreleaseAssignment(courseId: "c1", name: "ps1") { released } }'
    assert ins.error(q) == "NOT_FOUND"


def test_a_missing_assignment_is_named_to_instructors_and_hidden_from_students(as_user, course):
    """An instructor who mistypes a name is told it does not exist; a student gets the
    same answer for a name never used and for a withdrawn assignment."""
    ins, s1 = as_user("ins"), as_user("s1")
    release(ins, "c1", "ps1", {"a.ipynb": NB})
    ins('mutation { unreleaseAssignment(courseId: "c1", name: "ps1") { released } }')

    def error(user, name: str) -> tuple[str, str]:
        query = f'{{ course(id: "c1") {{ assignment(name: "{name}") {{ name }} }} }}'
        (found,) = user.raw(query).get_json()["errors"]
        return found["extensions"]["code"], found["message"]

    assert error(ins, "nope") == ("NOT_FOUND", "course 'c1' has no assignment 'nope'")
    for name in ("nope", "ps1"):
        assert error(s1, name) == (
            "NOT_FOUND", f"assignment '{name}' is not released in course 'c1'"
        )


def test_a_download_url_never_serves_another_file_later(as_user, course):
    """Replacing a release deletes its file rows; the new ones never take their ids, so
    an old URL finds nothing rather than another file."""
    ins = as_user("ins")
    (old,) = release(ins, "c1", "ps1", {"a.txt": b"one"})["files"]
    (new,) = release(ins, "c1", "ps1", {"b.txt": b"two"}, force=True)["files"]
    assert new["url"] != old["url"]
    assert ins.client.get(old["url"], headers=ins.headers).status_code == 404
    got = ins.client.get(new["url"], headers=ins.headers)
    assert got.status_code == 200 and got.data == b"two"


def test_submission_filters_and_collect(as_user, course):
    ins = as_user("ins")
    release(ins, "c1", "ps1", {"a.ipynb": NB}, due="2000-01-01T00:00:00Z")
    submit(as_user("s1"), "c1", "ps1", {"a.ipynb": b"1"}, ts="t1")
    submit(as_user("s1"), "c1", "ps1", {"a.ipynb": b"2"}, ts="t2")
    submit(as_user("s2"), "c1", "ps1", {"a.ipynb": b"3"}, ts="t3")
    everything = subs(ins)
    assert [(s["student"], s["timestamp"]) for s in everything] == [
        ("s1", "t1"),
        ("s1", "t2"),
        ("s2", "t3"),
    ]
    assert all(s["late"] for s in everything)  # due in 2000
    assert [s["timestamp"] for s in subs(ins, latestOnly=True)] == ["t2", "t3"]
    assert [s["timestamp"] for s in subs(ins, student="s2")] == ["t3"]
    assert subs(ins, beforeDue=True) == []
    assert [s["timestamp"] for s in subs(ins, students=["s2", "nobody"])] == ["t3"]
    assert subs(ins, students=[]) == []
    # Students see only their own, whatever they ask for.
    assert [s["timestamp"] for s in subs(as_user("s2"))] == ["t3"]
    assert [s["timestamp"] for s in subs(as_user("s2"), students=["s2"])] == ["t3"]
    for others in (["s1"], ["s2", "s1"]):
        assert as_user("s2").error(SUBMISSIONS, {"f": {"students": others}}) == "FORBIDDEN"
    too_many = {"f": {"students": [f"u{i}" for i in range(5001)]}}
    assert ins.error(SUBMISSIONS, too_many) == "BAD_USER_INPUT"
    assert ins.error(SUBMISSIONS, {"f": {"students": ["../x"]}}) == "BAD_USER_INPUT"
    collect = """mutation($f: SubmissionFilter) { collectSubmissions(courseId: "c1",
        assignment: "ps1", filter: $f) { student timestamp collectedAt files { path sha256 } } }"""
    first = ins(collect, {"f": {"latestOnly": True}})["collectSubmissions"]
    assert [s["timestamp"] for s in first] == ["t2", "t3"]
    assert all(s["collectedAt"] for s in first)
    assert first[0]["files"] == [{"path": "a.ipynb", "sha256": sha(b"2")}]
    assert [s["timestamp"] for s in subs(ins, uncollected=True)] == ["t1"]
    assert (
        ins(collect, {"f": {"uncollected": True, "latestOnly": True}})["collectSubmissions"][0][
            "timestamp"
        ]
        == "t1"
    )
    assert ins(collect, {"f": {"uncollected": True}})["collectSubmissions"] == []
    submit(as_user("s2"), "c1", "ps1", {"a.ipynb": b"4"}, ts="t4")
    submit(as_user("s1"), "c1", "ps1", {"a.ipynb": b"5"}, ts="t5")
    only = ins(collect, {"f": {"students": ["s2"], "latestOnly": True}})["collectSubmissions"]
    assert [s["timestamp"] for s in only] == ["t4"]
    assert [s["timestamp"] for s in subs(ins, uncollected=True)] == ["t5"]  # s1's stays


def test_due_time_and_late_flag(as_user, course):
    ins = as_user("ins")
    release(ins, "c1", "ps1", {"a.ipynb": NB}, due="2999-01-01T00:00:00+02:00")
    s = submit(as_user("s1"), "c1", "ps1", {"a.ipynb": b"1"})
    assert s["late"] is False
    assert s["timestamp"].endswith("UTC")  # server time when the client sends none
    due = as_user("s1")('{ course(id: "c1") { assignment(name: "ps1") { dueAt } } }')
    assert due["course"]["assignment"]["dueAt"] == "2998-12-31T22:00:00+00:00"
    assert subs(ins, beforeDue=True)[0]["student"] == "s1"


def test_feedback_release_replace_remove(as_user, course):
    ins, s1 = as_user("ins"), as_user("s1")
    release(ins, "c1", "ps1", {"a.ipynb": NB})
    submit(s1, "c1", "ps1", {"a.ipynb": b"1"}, ts="t1")
    submit(s1, "c1", "ps1", {"a.ipynb": b"2"}, ts="t2")
    q = """mutation($f: [FeedbackInput!]!) { releaseFeedback(courseId: "c1", assignment: "ps1",
        feedback: $f) { student notebook timestamp files { path sha256 } } }"""

    def give(html: bytes, ts=None):
        fb = {
            "student": "s1",
            "notebook": "a",
            "timestamp": ts,
            "files": [{"path": "a.html", "sha256": sha(html), "size": len(html)}],
        }
        return ins(q, {"f": [fb]}, {"f.0.files.0.content": html})["releaseFeedback"]

    assert give(b"<p>old</p>", "t1")[0]["timestamp"] == "t1"
    assert give(b"<p>latest</p>")[0]["timestamp"] == "t2"  # no timestamp: latest submission
    give(b"<p>new</p>", "t1")  # replaces t1's feedback
    got = s1(
        'mutation { fetchFeedback(courseId: "c1", assignment: "ps1") '
        "{ timestamp files { sha256 } } }"
    )
    assert {(f["timestamp"], f["files"][0]["sha256"]) for f in got["fetchFeedback"]} == {
        ("t1", sha(b"<p>new</p>")),
        ("t2", sha(b"<p>latest</p>")),
    }
    fb = {"student": "s2", "notebook": "a", "files": []}
    assert ins.error(q, {"f": [fb]}) == "NOT_FOUND"  # s2 never submitted
    removed = ins(
        'mutation { removeFeedback(courseId: "c1", assignment: "ps1", student: "s1", '
        'timestamp: "t1") }'
    )
    assert removed["removeFeedback"] == 1
    got = s1('{ course(id: "c1") { assignment(name: "ps1") { feedback { timestamp } } } }')
    assert got["course"]["assignment"]["feedback"] == [{"timestamp": "t2"}]


def test_roster_bulk_add_update_remove(as_user, course):
    ins = as_user("ins")
    add = """mutation($m: [MemberInput!]!) { addMembers(courseId: "c1", role: STUDENT,
        members: $m) { user firstName email } }"""
    ins(add, {"m": [{"user": f"u{i}", "firstName": "F"} for i in range(50)]})
    ins(add, {"m": [{"user": "u1", "email": "u1@example.org"}]})
    roster = ins('{ course(id: "c1") { roster(role: STUDENT) { user firstName email } } }')
    by_user = {m["user"]: m for m in roster["course"]["roster"]}
    assert len(by_user) == 52 and by_user["u1"] == {
        "user": "u1",
        "firstName": "F",
        "email": "u1@example.org",
    }
    assert as_user("u7")("{ courses { id myRoles } }")["courses"] == [
        {"id": "c1", "myRoles": ["STUDENT"]}
    ]
    gone = ins(
        'mutation { removeMembers(courseId: "c1", users: ["u1", "u2", "zz"], role: STUDENT) }'
    )
    assert gone["removeMembers"] == 2
    assert as_user("u1")("{ courses { id } }")["courses"] == []
    assert ins.error(add, {"m": [{"user": "x"}, {"user": "x"}]}) == "BAD_USER_INPUT"


def test_events_record_every_state_change(as_user, course):
    ins, s1 = as_user("ins"), as_user("s1")
    release(ins, "c1", "ps1", {"a.ipynb": NB})
    s1('mutation { fetchAssignment(courseId: "c1", name: "ps1") { name } }')
    submit(s1, "c1", "ps1", {"a.ipynb": b"1"}, ts="t1")
    ins('mutation { collectSubmissions(courseId: "c1", assignment: "ps1") { id } }')
    events = ins('{ events(courseId: "c1", assignment: "ps1") { actor action subject } }')["events"]
    assert [(e["actor"], e["action"]) for e in events] == [
        ("ins", "submission.collected"),
        ("s1", "submission.submitted"),
        ("s1", "assignment.fetched"),
        ("ins", "assignment.released"),
    ]
    only = ins('{ events(courseId: "c1", actor: "s1", limit: 1) { action } }')["events"]
    assert only == [{"action": "submission.submitted"}]


def test_a_course_created_again_under_a_deleted_ones_id_starts_a_new_log(as_user, course):
    """The old cohort's events (names, submissions) stay with the deleted course."""
    admin, ins, s1 = as_user("admin"), as_user("ins"), as_user("s1")
    release(ins, "c1", "ps1", {"a.ipynb": NB})
    submit(s1, "c1", "ps1", {"a.ipynb": b"old cohort"}, ts="t1")
    admin('mutation { deleteCourse(id: "c1") }')
    admin('mutation { createCourse(id: "c1") { id } }')
    admin("""mutation { addMembers(courseId: "c1", role: INSTRUCTOR, members: [{user: "new"}])
             { user } }""")
    query = '{ events(courseId: "c1", limit: 1000) { actor action subject } }'
    seen = as_user("new")(query)["events"]
    assert [e["action"] for e in seen] == ["roster.added", "course.created"]
    assert not any("s1" in (e["actor"], e["subject"] or "") for e in seen)
    # Admins, who could read the old course, see the whole log, the deletion included.
    actions = [e["action"] for e in admin(query)["events"]]
    assert actions[:3] == ["roster.added", "course.created", "course.deleted"]
    assert "submission.submitted" in actions
    # Other courses' logs are untouched.
    assert as_user("ins2")('{ events(courseId: "d1") { action } }')["events"]


def test_content_is_reused_only_when_the_caller_may_read_it(app, as_user, course):
    ins, s1, s2 = as_user("ins"), as_user("s1"), as_user("s2")
    data = b"x" * 10_000
    release(ins, "c1", "ps1", {"data.csv": data, "a.ipynb": NB})
    q = 'query($h: [String!]!) { missingContent(courseId: "c1", sha256: $h) }'
    secret = b"s1's own answer"
    # Released content is reusable by students without sending it again.
    assert s1(q, {"h": [sha(data), sha(secret)]})["missingContent"] == [sha(secret)]
    inputs, uploads = file_inputs({"data.csv": data, "a.ipynb": secret})
    del uploads["files.0.content"]  # the dataset is not sent

    s1(SUBMIT, {"c": "c1", "a": "ps1", "files": inputs, "ts": None}, uploads)
    # s1 may now reuse their own answer; s2 must not learn or reuse it.
    assert s1(q, {"h": [sha(secret)]})["missingContent"] == []
    assert s2(q, {"h": [sha(secret)]})["missingContent"] == [sha(secret)]
    inputs, _ = file_inputs({"a.ipynb": secret})
    code = s2.error(SUBMIT, {"c": "c1", "a": "ps1", "files": inputs, "ts": None})
    assert code == "BAD_USER_INPUT"
    # A student of another course cannot reuse c1's release either.
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Blob)) == 3


def test_upload_mismatch_and_limits_store_nothing(app, as_user, course, settings):
    ins = as_user("ins")
    q = """mutation($f: [FileInput!]!) { releaseAssignment(courseId: "c1", name: "ps1",
           files: $f) { name } }"""
    wrong = [{"path": "a.ipynb", "sha256": sha(b"other"), "size": 5}]
    assert ins.error(q, {"f": wrong}, {"f.0.content": b"hello"}) == "BAD_USER_INPUT"
    huge = [{"path": "a.ipynb", "sha256": sha(b""), "size": settings.max_file_size + 1}]
    assert ins.error(q, {"f": huge}) == "PAYLOAD_TOO_LARGE"
    many = [
        {"path": f"f{i}", "sha256": sha(b""), "size": settings.max_file_size}
        for i in range(settings.max_upload_size // settings.max_file_size + 1)
    ]
    assert ins.error(q, {"f": many}) == "PAYLOAD_TOO_LARGE"
    dup = [{"path": "a", "sha256": sha(b"a"), "size": 1}] * 2
    assert ins.error(q, {"f": dup}, {"f.0.content": b"a", "f.1.content": b"a"}) == "BAD_USER_INPUT"
    with app.app_context():
        for model in (Blob, File, Submission):
            assert db.session.scalar(sa.select(sa.func.count()).select_from(model)) == 0


def test_file_over_the_limit_is_refused_while_streaming(tmp_path, as_user):
    from ngshare_gql import create_app
    from ngshare_gql.config import Settings
    from tests.conftest import GQL, reset_database

    small = create_app(
        Settings(
            database_url=f"sqlite:///{tmp_path}/s.db",
            auth="dev",
            admins=("admin",),
            max_file_size=1000,
        )
    )
    reset_database(small)
    admin = GQL(small.test_client(), "admin")
    admin('mutation { createCourse(id: "c") { id } }')
    q = """mutation($f: [FileInput!]!) { releaseAssignment(courseId: "c", name: "a",
           files: $f) { name } }"""
    body = b"x" * 5000
    response = admin.raw(
        q, {"f": [{"path": "a", "sha256": sha(body), "size": 10}]}, {"f.0.content": body}
    )
    assert response.status_code == 413
    assert response.get_json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert not list((tmp_path).glob("staging/upload-*"))


def test_download_headers_and_conditional_get(app, as_user, course):
    rel = release(as_user("ins"), "c1", "ps1", {"dir/ä b.txt": b"content"})
    url = rel["files"][0]["url"]
    client = app.test_client()
    response = client.get(url, headers={"Authorization": "Bearer s1"})
    assert response.status_code == 200
    assert response.headers["ETag"] == f'"{sha(b"content")}"'
    assert response.headers["Content-Length"] == "7"
    assert "filename*=UTF-8''%C3%A4%20b.txt" in response.headers["Content-Disposition"]
    again = client.get(
        url, headers={"Authorization": "token s1", "If-None-Match": response.headers["ETag"]}
    )
    assert again.status_code == 304
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "token t1"}).status_code in (403, 404)
    assert client.get("/files/999999", headers={"Authorization": "token s1"}).status_code == 404


def test_errors_carry_codes_and_unexpected_ones_are_masked(
    app, as_user, course, monkeypatch, caplog
):
    assert as_user(None).error("{ me { name } }") == "UNAUTHENTICATED"
    assert as_user("s1").error('{ course(id: "nope") { id } }') == "FORBIDDEN"
    assert as_user("admin").error('{ course(id: "nope") { id } }') == "NOT_FOUND"
    assert as_user("s1").error("{ nosuchfield }") == "BAD_USER_INPUT"

    from ngshare_gql.domain import courses

    def boom(caller):
        raise RuntimeError("secret detail /srv/path")

    monkeypatch.setattr(courses, "list_courses", boom)
    response = as_user("s1").raw("{ courses { id } }")
    error = response.get_json()["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "secret" not in error["message"] and "/srv" not in response.get_data(as_text=True)
    assert "secret detail" in caplog.text  # logged in full on the server


def test_healthz_and_graphiql(app):
    client = app.test_client()
    assert client.get("/healthz").get_json() == {"status": "ok", "database": "ok", "blobs": "ok"}
    assert client.get("/livez").get_json() == {"status": "ok"}
    page = client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and b"graphiql" in page.data.lower()


def test_limits_on_query_shape(as_user, course):
    s1 = as_user("s1")
    deep = "{ courses { assignments { submissions { feedback { files { path } } } } } }"
    assert s1(deep)["courses"]
    aliases = "{ " + "".join(f"a{i}: me {{ name }} " for i in range(40)) + "}"
    assert s1.error(aliases) == "BAD_USER_INPUT"
    tokens = "{ me { " + "name " * 6000 + "} }"
    assert s1.error(tokens) == "BAD_USER_INPUT"
    assert s1.error(aliases) == "BAD_USER_INPUT"  # again, now from the validation cache
    assert s1.error(tokens) == "BAD_USER_INPUT"


def test_validation_is_cached_per_document_and_per_limits(monkeypatch, tmp_path):
    """Repeated operations are validated once; a service with other limits validates anew."""
    import strawberry.schema.schema as strawberry_schema

    calls = []
    real = strawberry_schema.validate
    monkeypatch.setattr(
        strawberry_schema, "validate", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    query = "{ a: me { name } b: me { name } }"

    def client(max_aliases: int) -> GQL:
        settings = Settings(
            database_url=f"sqlite:///{tmp_path}/{max_aliases}.db", auth="dev",
            max_aliases=max_aliases,
        )
        app = create_app(settings)
        reset_database(app)
        return GQL(app.test_client(), "s1")

    strict = client(1)
    for _ in range(3):
        assert strict.error(query) == "BAD_USER_INPUT"
    assert len(calls) == 1
    lenient = client(5)
    for _ in range(3):
        assert lenient(query)["a"] == {"name": "s1"}
    assert len(calls) == 2


def test_a_file_keeps_the_modification_time_its_uploader_gave(as_user, course):
    """As nbgrader's exchange copies with shutil.copytree: whoever downloads a file may
    give it the time it was last modified where it came from."""
    ins, s1 = as_user("ins"), as_user("s1")
    inputs, uploads = file_inputs({"a.ipynb": b"{}", "b.txt": b"b", "c.txt": b"c"})
    inputs[0]["modifiedAt"] = "2001-02-03T04:05:06.789012+00:00"
    inputs[1]["modifiedAt"] = "2001-02-03T06:05:06+02:00"  # another zone: kept as UTC
    variables = {"c": course, "n": "ps1", "files": inputs, "force": False, "due": None,
                 "folders": None}
    ins(RELEASE, variables, uploads)
    files = s1(
        '{ course(id: "c1") { assignment(name: "ps1") { files { path modifiedAt } } } }'
    )["course"]["assignment"]["files"]
    assert {f["path"]: f["modifiedAt"] for f in files} == {
        "a.ipynb": "2001-02-03T04:05:06.789012+00:00",
        "b.txt": "2001-02-03T04:05:06+00:00",
        "c.txt": None,  # not said
    }
    # A student's submission keeps theirs, content reused or not, for the instructor.
    answer = {"path": "a.ipynb", "sha256": sha(b"{}"), "size": 2, "content": None,
              "modifiedAt": "2002-03-04T05:06:07"}  # without zone: UTC
    s1(SUBMIT, {"c": course, "a": "ps1", "files": [answer], "ts": None, "folders": None})
    collect = """mutation { collectSubmissions(courseId: "c1", assignment: "ps1") {
        files { path modifiedAt } } }"""
    (sub,) = ins(collect)["collectSubmissions"]
    assert [(f["path"], f["modifiedAt"]) for f in sub["files"]] == [
        ("a.ipynb", "2002-03-04T05:06:07+00:00")
    ]


def test_a_modification_time_that_is_no_date_time_is_refused_and_stores_nothing(
    as_user, course
):
    ins = as_user("ins")
    inputs, uploads = file_inputs({"a.txt": b"a"})
    inputs[0]["modifiedAt"] = "yesterday"
    variables = {"c": course, "n": "ps1", "files": inputs, "force": False, "due": None,
                 "folders": None}
    body = ins.raw(RELEASE, variables, uploads).get_json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "modifiedAt" in body["errors"][0]["message"]
    assert ins('{ course(id: "c1") { assignments { name } } }')["course"]["assignments"] == []


@pytest.mark.parametrize(
    ("query", "variables", "name"),
    [
        ("release", {"due": "0001-01-01T00:00:00+14:00"}, "dueAt"),
        ("release", {"modified": "9999-12-31T23:00:00-14:00"}, "modifiedAt"),
        ("events", {"before": "0001-01-01T05:00:00+06:00"}, "before"),
    ],
)
def test_a_time_whose_utc_is_out_of_range_is_bad_input(as_user, course, query, variables, name):
    """Valid where it was written, a year outside 1-9999 in UTC: the caller's error, named,
    not an internal one; nothing is stored."""
    ins = as_user("ins")
    if query == "release":
        inputs, uploads = file_inputs({"a.txt": b"a"})
        inputs[0]["modifiedAt"] = variables.get("modified")
        body = ins.raw(RELEASE, {"c": course, "n": "ps1", "files": inputs, "force": False,
                                 "due": variables.get("due"), "folders": None}, uploads)
    else:
        body = ins.raw('query($b: DateTime) { events(courseId: "c1", before: $b) { action } }',
                       {"b": variables["before"]})
    (error,) = body.get_json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert name in error["message"] and "out of range" in error["message"]
    assert ins('{ course(id: "c1") { assignments { name } } }')["course"]["assignments"] == []


def test_the_extreme_times_a_client_may_give_are_kept_and_given_back(as_user, course):
    ins = as_user("ins")
    inputs, uploads = file_inputs({"old.txt": b"o", "new.txt": b"n"})
    inputs[0]["modifiedAt"] = "0001-01-01T00:00:00+00:00"
    inputs[1]["modifiedAt"] = "9999-12-31T23:59:59.999999+00:00"
    files = ins(RELEASE, {"c": course, "n": "ps1", "files": inputs, "force": False,
                          "due": None, "folders": None}, uploads)["releaseAssignment"]["files"]
    got = ins('{ course(id: "c1") { assignment(name: "ps1") { files { path modifiedAt } } } }')
    assert {f["path"]: f["modifiedAt"] for f in got["course"]["assignment"]["files"]} == {
        "old.txt": "0001-01-01T00:00:00+00:00",
        "new.txt": "9999-12-31T23:59:59.999999+00:00",
    }
    assert len(files) == 2
