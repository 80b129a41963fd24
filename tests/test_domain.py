"""The domain layer on its own: no HTTP, no GraphQL, just callers and operations."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from ngshare_gql.auth import Identity
from ngshare_gql.domain import assignments, courses, feedback, submissions
from ngshare_gql.domain.files import FileSpec
from ngshare_gql.domain.validation import check_layout, check_name, check_path
from ngshare_gql.errors import BadInput, Conflict, Forbidden, NotFound
from ngshare_gql.extensions import db
from ngshare_gql.models import Blob, Event, Role
from ngshare_gql.roles import Caller, GroupRules, caller_for
from ngshare_gql.storage.blobs import FilesystemBlobStore
from ngshare_gql.storage.staging import StagedFile
from tests.conftest import sha


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


def who(name: str, admin: bool = False, groups=()) -> Caller:
    return caller_for(Identity(name=name, admin=admin, groups=frozenset(groups)))


def upload(tmp_path, files: dict[str, bytes]) -> list[FileSpec]:
    specs = []
    for path, content in files.items():
        staged = StagedFile(str(tmp_path), 10**9)
        staged.write(content)
        specs.append(FileSpec(path=path, sha256=sha(content), size=len(content), content=staged))
    return specs


@pytest.fixture
def cs101(ctx):
    admin = who("root", admin=True)
    courses.create_course(admin, "cs101", "Intro")
    courses.add_members(admin, "cs101", Role.INSTRUCTOR, [courses.MemberSpec("prof")])
    courses.add_members(
        admin, "cs101", Role.STUDENT, [courses.MemberSpec("amy"), courses.MemberSpec("ben")]
    )
    courses.create_course(admin, "art", "Art")
    courses.add_members(admin, "art", Role.INSTRUCTOR, [courses.MemberSpec("amy")])
    courses.add_members(admin, "art", Role.STUDENT, [courses.MemberSpec("prof")])
    return "cs101"


def test_roles_are_checked_in_the_course_named(cs101, tmp_path):
    prof, amy = who("prof"), who("amy")
    files = upload(tmp_path, {"a.ipynb": b"{}"})
    assignments.release(prof, "cs101", "ps1", files)
    # amy instructs "art" but is a student in cs101: no instructor rights there.
    with pytest.raises(Forbidden):
        assignments.release(amy, "cs101", "ps2", upload(tmp_path, {"x": b"x"}))
    with pytest.raises(Forbidden):
        submissions.collect(amy, "cs101", "ps1", submissions.SubmissionFilter())
    # ...and prof, a student in art, cannot release or collect there.
    with pytest.raises(Forbidden):
        assignments.release(prof, "art", "a1", upload(tmp_path, {"x": b"x"}))
    with pytest.raises(Forbidden):
        courses.roster(prof, "art")
    # A stranger learns nothing about a course, existing or not.
    for course_id in ("cs101", "does-not-exist"):
        with pytest.raises(Forbidden, match=course_id):
            assignments.list_assignments(who("eve"), [course_id])


def test_assignments_of_several_courses_are_seen_by_each_course_role(cs101, tmp_path):
    prof, amy = who("prof"), who("amy")
    assignments.release(prof, "cs101", "ps1", upload(tmp_path, {"a.ipynb": b"{}"}))
    assignments.release(prof, "cs101", "draft", upload(tmp_path, {"b.ipynb": b"{}"}))
    assignments.unrelease(prof, "cs101", "draft")
    assignments.release(amy, "art", "a1", upload(tmp_path, {"c.ipynb": b"{}"}))
    assignments.unrelease(amy, "art", "a1")

    def names(caller, course_ids):
        found = assignments.list_assignments(caller, course_ids)
        return {c: [a.name for a in found[c]] for c in course_ids}

    # amy instructs art (sees its unreleased a1), is a student in cs101 (not the draft)
    assert names(amy, ["art", "cs101"]) == {"art": ["a1"], "cs101": ["ps1"]}
    assert names(prof, ["art", "cs101"]) == {"art": [], "cs101": ["draft", "ps1"]}
    assert names(who("root", admin=True), ["art"]) == {"art": ["a1"]}
    # every course is checked: one the caller is not in refuses the whole listing
    with pytest.raises(Forbidden, match="secret"):
        assignments.list_assignments(amy, ["cs101", "secret"])


def test_hub_groups_give_roles_without_a_roster_entry(ctx, tmp_path):
    teacher = who("tina", groups={"formgrade-bio"})
    pupil = who("pat", groups={"nbgrader-bio"})
    assignments.release(teacher, "bio", "lab1", upload(tmp_path, {"lab.ipynb": b"{}"}))
    sub = submissions.submit(pupil, "bio", "lab1", upload(tmp_path, {"lab.ipynb": b"done"}))
    assert sub.student == "pat"
    assert [c.id for c in courses.list_courses(pupil)] == ["bio"]
    with pytest.raises(Forbidden):
        submissions.submit(teacher, "bio", "lab1", upload(tmp_path, {"lab.ipynb": b"x"}))
    rules = GroupRules("teach:{course}", "")
    assert rules.courses_from_groups(frozenset({"teach:x", "nbgrader-y", "teach:"})) == {
        "x": {Role.INSTRUCTOR}
    }


def test_same_content_is_stored_once(cs101, tmp_path):
    prof = who("prof")
    data = os.urandom(4096)
    assignments.release(prof, "cs101", "ps1", upload(tmp_path, {"d.bin": data, "e.bin": data}))
    submissions.submit(who("amy"), "cs101", "ps1", upload(tmp_path, {"d.bin": data}))
    submissions.submit(who("ben"), "cs101", "ps1", [FileSpec("d.bin", sha(data), len(data))])
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Blob)) == 1


def test_submit_needs_a_released_assignment_and_a_student_role(cs101, tmp_path):
    with pytest.raises(NotFound):
        submissions.submit(who("amy"), "cs101", "nope", upload(tmp_path, {"a": b"a"}))
    assignments.release(who("prof"), "cs101", "ps1", upload(tmp_path, {"a": b"a"}))
    with pytest.raises(Forbidden):
        submissions.submit(who("prof"), "cs101", "ps1", upload(tmp_path, {"a": b"a"}))
    with pytest.raises(BadInput):
        submissions.submit(who("amy"), "cs101", "ps1", upload(tmp_path, {"a": b"a"}), "x" * 65)


def test_force_release_replaces_atomically_and_failed_release_changes_nothing(cs101, tmp_path):
    prof = who("prof")
    assignments.release(prof, "cs101", "ps1", upload(tmp_path, {"a": b"1", "b": b"2"}))
    with pytest.raises(Conflict):
        assignments.release(prof, "cs101", "ps1", upload(tmp_path, {"c": b"3"}))
    bad = upload(tmp_path, {"c": b"3"})
    bad[0].sha256 = sha(b"other")
    with pytest.raises(BadInput):
        assignments.release(prof, "cs101", "ps1", bad, force=True)
    db.session.rollback()
    kept = assignments.get_assignment(prof, "cs101", "ps1")
    assert [f.path for f in kept.files] == ["a", "b"]
    assignments.release(prof, "cs101", "ps1", upload(tmp_path, {"c": b"3"}), force=True)
    assert [f.path for f in assignments.get_assignment(prof, "cs101", "ps1").files] == ["c"]


def test_feedback_goes_only_to_its_student(cs101, tmp_path):
    prof, amy, ben = who("prof"), who("amy"), who("ben")
    assignments.release(prof, "cs101", "ps1", upload(tmp_path, {"a.ipynb": b"{}"}))
    submissions.submit(amy, "cs101", "ps1", upload(tmp_path, {"a.ipynb": b"amy"}), "t-amy")
    submissions.submit(ben, "cs101", "ps1", upload(tmp_path, {"a.ipynb": b"ben"}), "t-ben")
    specs = [
        feedback.FeedbackSpec("amy", "a", "t-amy", upload(tmp_path, {"a.html": b"for amy"})),
        feedback.FeedbackSpec("ben", "a", None, upload(tmp_path, {"a.html": b"for ben"})),
    ]
    feedback.release_feedback(prof, "cs101", "ps1", specs)
    mine = feedback.fetch_feedback(amy, "cs101", "ps1")
    assert [(f.submission.student, f.files[0].sha256) for f in mine] == [("amy", sha(b"for amy"))]
    ps1 = assignments.get_assignment(ben, "cs101", "ps1")
    with pytest.raises(Forbidden):
        feedback.list_feedback(ben, ps1, "amy")
    with pytest.raises(Forbidden):
        submissions.list_submissions(ben, ps1, submissions.SubmissionFilter(student="amy"))


def test_every_state_change_writes_an_event(cs101, tmp_path):
    before = db.session.scalar(sa.select(sa.func.count()).select_from(Event))
    prof = who("prof")
    assignments.release(prof, "cs101", "ps1", upload(tmp_path, {"a": b"a"}))
    assignments.fetch(who("amy"), "cs101", "ps1")
    submissions.submit(who("amy"), "cs101", "ps1", upload(tmp_path, {"a": b"b"}))
    submissions.collect(prof, "cs101", "ps1", submissions.SubmissionFilter())
    assignments.unrelease(prof, "cs101", "ps1")
    courses.remove_members(prof, "cs101", ["ben"], Role.STUDENT)
    actions = [e.action for e in courses_events(prof)]
    assert actions[: 6] == [
        "roster.removed", "assignment.unreleased", "submission.collected",
        "submission.submitted", "assignment.fetched", "assignment.released",
    ]  # fmt: skip
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Event)) == before + 6


def courses_events(caller):
    from ngshare_gql.domain.events import list_events

    return list_events(caller, "cs101")


@pytest.mark.parametrize(
    "path",
    ["../x", "/etc/passwd", "a/../../b", "C:\\x", "C:x", "a\\b", "a\x00b", "a//b", "./a", "a/",
     "x" * 256, "a/" * 600, "", "tab\there"],
)  # fmt: skip
def test_hostile_paths_are_refused(path):
    with pytest.raises(BadInput):
        check_path(path)


def test_good_paths_and_names_pass():
    for path in ("a.ipynb", "data/sub/file.csv", "ümlaut ñ.txt", ".hidden", "a..b"):
        assert check_path(path) == path
    with pytest.raises(BadInput, match="more than once"):
        check_layout(["caf\u00e9.txt", "cafe\u0301.txt"])  # NFC-equal names
    # Two files where one would have to be a folder: "a" and "a/b" cannot both exist.
    check_layout(["a/b", "a/c", "ab"], ["a/d", "b"])
    for files, folders in ((["a", "a/b"], []), (["a.ipynb"], ["a.ipynb/x"]), (["x"], ["x"])):
        with pytest.raises(BadInput):
            check_layout(files, folders)
    for bad in ("", " x", "a/b", "..", "x\n", "y" * 200):
        with pytest.raises(BadInput):
            check_name(bad, "course id")


def test_filesystem_store_writes_atomically_and_shards(ctx, tmp_path):
    store = FilesystemBlobStore(str(tmp_path / "blobs"))
    staged = StagedFile(store.staging, 10**6)
    staged.write(b"hello")
    store.put(staged)
    path = store.path_of(sha(b"hello"))
    assert path.endswith(f"{sha(b'hello')[:2]}/{sha(b'hello')[2:4]}/{sha(b'hello')}")
    assert b"".join(store.iter_bytes(sha(b"hello"))) == b"hello"
    assert os.listdir(store.staging) == []  # the staged file was renamed into place
    assert os.path.exists(path)
    with pytest.raises(ValueError):
        store.path_of("../../etc/passwd")
