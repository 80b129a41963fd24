"""nbgrader's own exchange tests that look inside the exchange directory on disk,
ported: the same steps through nbgrader's apps, the same intent checked on the
service (there is no exchange directory to look into)."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import time

import pytest
from nbgrader.tests.apps import base as nbgrader_tests_base

from ngshare_gql.client import Client
from tests.nbgrader_flow import User, plugin_config
from tests.nbgrader_plugin import reset_courses
from tests.servers import gunicorn_server, service_env

pytestmark = pytest.mark.slow

FILES = os.path.join(os.path.dirname(nbgrader_tests_base.__file__), "files")
ME = "student1"  # nbgrader's tests act as one user who is instructor and student


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("service")
    with gunicorn_server(service_env(tmp, NGSHARE_MAX_ALIASES="100"), workers=1) as url:
        yield url


@pytest.fixture
def me(tmp_path, service):
    """The user of nbgrader's tests: one course dir, one cwd, one cache; fresh courses."""
    reset_courses(service, ME)
    course_dir, cwd = tmp_path / "course", tmp_path / "cwd"
    course_dir.mkdir()
    cwd.mkdir()
    config = {
        **plugin_config(service),
        "CourseDirectory.root": str(course_dir),
        "Exchange.cache": str(tmp_path / "cache"),
    }
    return User(ME, str(cwd), token=ME, config=config)


def copy(name: str, dest: str) -> None:
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    shutil.copy(os.path.join(FILES, name), dest)


def course_root(user: User) -> str:
    return str(user.config["CourseDirectory.root"])


def release(user: User, assignment: str = "ps1", course: str = "abc101") -> str:
    copy("test.ipynb", os.path.join(course_root(user), "release", assignment, "p1.ipynb"))
    return user.ok("release_assignment", assignment, "--course", course)


def server(user: User, query: str, **variables) -> dict:
    return Client(str(user.config["Exchange.url"]), "admin").execute(query, variables)


RELEASED = """query($c: String!, $a: String!) {
  course(id: $c) { assignment(name: $a) { released files { path sha256 } } } }"""
SUBMISSIONS = """query($c: String!, $a: String!) {
  course(id: $c) { assignment(name: $a) { submissions {
    student timestamp files { path size url sha256 } feedback { notebook } } } } }"""


def released_files(user: User, course: str = "abc101", assignment: str = "ps1") -> list[str]:
    found = server(user, RELEASED, c=course, a=assignment)["course"]["assignment"]
    return sorted(f["path"] for f in found["files"]) if found["released"] else []


def submissions(user: User, course: str = "abc101", assignment: str = "ps1") -> list[dict]:
    return server(user, SUBMISSIONS, c=course, a=assignment)["course"]["assignment"]["submissions"]


def content(user: User, file: dict) -> str:
    dest = os.path.join(user.home, "..", "download.tmp")
    Client(str(user.config["Exchange.url"]), "admin").download(file["url"], dest, file["sha256"])
    with open(dest) as fh:
        return fh.read()


# --- test_nbgrader_releaseassignment: test_release, test_force_release(_f), ...
@pytest.mark.parametrize("force", ["--force", "-f"])
def test_release_and_force_release(me, force):
    release(me)
    assert released_files(me) == ["p1.ipynb"]
    me.fails("release_assignment", "ps1", "--course", "abc101")
    copy("submitted-changed.ipynb", os.path.join(course_root(me), "release", "ps1", "p1.ipynb"))
    me.ok("release_assignment", "ps1", "--course", "abc101", force)
    (p1,) = server(me, RELEASED, c="abc101", a="ps1")["course"]["assignment"]["files"]
    with open(os.path.join(FILES, "submitted-changed.ipynb"), "rb") as fh:
        assert p1["sha256"] == hashlib.sha256(fh.read()).hexdigest()


# --- test_nbgrader_submit: test_submit, test_submit_multiple_courses, exclude, include, sizes
def test_submit_records_timestamps_and_files(me):
    release(me)
    me.ok("fetch_assignment", "ps1", "--course", "abc101")
    os.chmod(os.path.join(me.home, "ps1", "p1.ipynb"), 0o400)  # test_submit_readonly
    me.ok("submit", "ps1", "--course", "abc101")
    time.sleep(0.01)
    me.ok("submit", "ps1", "--course", "abc101")
    first, second = submissions(me)
    cached = sorted(os.listdir(os.path.join(str(me.config["Exchange.cache"]), "abc101")))
    assert [c.split("+")[:3] for c in cached] == [
        [ME, "ps1", first["timestamp"]],
        [ME, "ps1", second["timestamp"]],
    ]
    assert first["timestamp"] < second["timestamp"]
    for s in (first, second):
        assert s["student"] == ME
        paths = {f["path"]: f for f in s["files"]}
        assert sorted(paths) == ["p1.ipynb", "submission_secret.txt", "timestamp.txt"]
        assert content(me, paths["timestamp.txt"]) == s["timestamp"]


def test_submit_to_two_courses(me):
    for course in ("abc101", "abc102"):
        release(me, "ps1", course)
        me.ok("fetch_assignment", "ps1", "--course", course, "--Exchange.path_includes_course=True")
    me.ok("submit", "ps1", "--course", "abc101", "--Exchange.path_includes_course=True")
    assert len(submissions(me, "abc101")) == 1 and submissions(me, "abc102") == []
    me.ok("submit", "ps1", "--course", "abc102", "--Exchange.path_includes_course=True")
    assert len(submissions(me, "abc102")) == 1


@pytest.mark.parametrize(
    "flags, files, kept",
    [
        ([], {"foo.pyc": ""}, []),  # test_submit_exclude
        (['--CourseDirectory.include=["*.ipynb"]'], {"foo.txt": ""}, []),  # include
        (
            ["--CourseDirectory.max_file_size=2"],  # test_submit_max_file_size
            {"small_file": "x" * 2000, "large_file": "x" * 2001},
            ["small_file"],
        ),
    ],
)
def test_submit_selects_files_like_the_default_exchange(me, flags, files, kept):
    release(me)
    me.ok("fetch_assignment", "ps1", "--course", "abc101")
    for name, text in files.items():
        with open(os.path.join(me.home, "ps1", name), "w") as fh:
            fh.write(text)
    me.ok("submit", "ps1", "--course", "abc101", *flags)
    (s,) = submissions(me)
    extra = {f["path"] for f in s["files"]} - {"p1.ipynb", "timestamp.txt", "submission_secret.txt"}
    assert sorted(extra) == kept


# --- test_nbgrader_collect: test_owner_check
def test_submission_is_recorded_under_the_authenticated_identity(me):
    """check_owner guards against one student submitting as another; here the service
    records every submission under the identity that authenticated it."""
    release(me)
    me.ok("fetch_assignment", "ps1", "--course", "abc101")
    out = me.ok("submit", "ps1", "--course", "abc101", "--student=foobar_student")
    assert "under your JupyterHub identity 'student1', not 'foobar_student'" in out
    (s,) = submissions(me)
    assert s["student"] == ME
    me.ok("collect", "ps1", "--course", "abc101", cwd=course_root(me))
    assert os.listdir(os.path.join(course_root(me), "submitted")) == [ME]


# --- test_nbgrader_collect: test_permissions (the submission's own modes; the inbound's
# are the exchange directory's, which a service has none of)
@pytest.mark.parametrize("groupshared", [False, True])
def test_collected_submission_modes(me, groupshared):
    """With ``groupshared`` the other instructors of the group may change what was
    collected: folders ug+rwx and setgid, files ug+rw. Without it, the umask's modes."""
    release(me)
    me.ok("fetch_assignment", "ps1", "--course", "abc101")
    me.ok("submit", "ps1", "--course", "abc101")
    old = os.umask(0o022)
    try:
        me.ok(
            "collect", "ps1", "--course", "abc101",
            f"--CourseDirectory.groupshared={groupshared}", cwd=course_root(me),
        )
    finally:
        os.umask(old)
    folder = os.path.join(course_root(me), "submitted", ME, "ps1")

    def mode(name: str) -> int:
        return stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode)

    files = ["p1.ipynb", "timestamp.txt", "submission_secret.txt"]
    assert sorted(os.listdir(folder)) == sorted(files)
    if groupshared:
        assert mode("") == 0o2775
        assert {name: mode(name) for name in files} == dict.fromkeys(files, 0o664)
    else:
        assert mode("") == 0o755
        assert {name: mode(name) for name in files} == dict.fromkeys(files, 0o644)


# --- test_nbgrader_list: test_list_inbound(_no_random_string), test_list_remove_inbound,
# test_list_without_random_string
def test_list_and_remove_inbound(me):
    for ps in ("ps1", "ps2"):
        release(me, ps)
        me.ok("fetch_assignment", ps, "--course", "abc101")
    assert me.ok("list", "--inbound", "ps1") == "[ListApp | INFO] Submitted assignments:\n"
    me.ok("submit", "ps1", "--course", "abc101")
    me.ok("submit", "ps2", "--course", "abc101", "--ExchangeSubmit.add_random_string=False")
    (ts1,) = [s["timestamp"] for s in submissions(me, assignment="ps1")]
    (ts2,) = [s["timestamp"] for s in submissions(me, assignment="ps2")]
    assert me.ok("list", "--inbound") == (
        "[ListApp | INFO] Submitted assignments:\n"
        f"[ListApp | INFO] abc101 {ME} ps1 {ts1} (no feedback available)\n"
        f"[ListApp | INFO] abc101 {ME} ps2 {ts2} (no feedback available)\n"
    )
    me.ok("list", "--inbound", "--remove", "ps1")
    assert submissions(me, assignment="ps1") == []
    assert len(submissions(me, assignment="ps2")) == 1
    me.ok("list", "--inbound", "--remove", "ps2")
    assert submissions(me, assignment="ps2") == []
    assert me.ok("list", "--inbound") == "[ListApp | INFO] Submitted assignments:\n"


def test_list_takes_the_default_exchanges_glob_patterns(me):
    """nbgrader's exchange globs its folders, so course and assignment ids may be
    patterns: ``nbgrader list 'ps*'``, ``--inbound --remove 'quiz*'``."""
    for ps in ("ps1", "ps2", "quiz1"):
        release(me, ps)
    assert me.ok("list", "ps*") == (
        "[ListApp | INFO] Released assignments:\n"
        "[ListApp | INFO] abc101 ps1\n"
        "[ListApp | INFO] abc101 ps2\n"
    )
    assert me.ok("list", "*1", "--course", "abc*") == (
        "[ListApp | INFO] Released assignments:\n"
        "[ListApp | INFO] abc101 ps1\n"
        "[ListApp | INFO] abc101 quiz1\n"
    )
    for ps in ("ps1", "quiz1"):
        me.ok("fetch_assignment", ps, "--course", "abc101")
        me.ok("submit", ps, "--course", "abc101")
    (ts,) = [s["timestamp"] for s in submissions(me, assignment="ps1")]
    assert me.ok("list", "--inbound", "p?1") == (
        "[ListApp | INFO] Submitted assignments:\n"
        f"[ListApp | INFO] abc101 {ME} ps1 {ts} (no feedback available)\n"
    )
    me.ok("list", "--inbound", "--remove", "quiz*", f"--student={ME[:4]}*")
    assert submissions(me, assignment="quiz1") == []
    assert len(submissions(me, assignment="ps1")) == 1


# --- test_nbgrader_list: test_list_feedback_inbound, test_list_feedback_cached
def test_list_feedback_states(me):
    root = course_root(me)
    copy("test.ipynb", os.path.join(root, "source", "ps1", "p1.ipynb"))
    me.ok("generate_assignment", "ps1", "--course", "abc101", cwd=root)
    me.ok("release_assignment", "ps1", "--course", "abc101", cwd=root)
    me.ok("fetch_assignment", "ps1", "--course", "abc101")
    me.ok("submit", "ps1", "--course", "abc101")

    def make_feedback() -> None:
        for step in ("collect --update", "autograde", "generate_feedback", "release_feedback"):
            me.ok(*step.split(), "ps1", "--course", "abc101", cwd=root)

    make_feedback()
    time.sleep(0.01)
    me.ok("submit", "ps1", "--course", "abc101")
    ts = [s["timestamp"] for s in submissions(me)]

    def listed(*states: str) -> None:
        expected = "[ListApp | INFO] Submitted assignments:\n" + "".join(
            f"[ListApp | INFO] abc101 {ME} ps1 {t} ({state})\n"
            for t, state in zip(ts, states, strict=True)
        )
        assert me.ok("list", "--inbound", "ps1") == expected
        assert me.ok("list", "--cached", "ps1") == expected

    listed("feedback ready to be fetched", "no feedback available")
    me.ok("fetch_feedback", "ps1", "--course", "abc101")
    listed("feedback already fetched", "no feedback available")
    # The instructor changes the feedback: it is ready to be fetched again.
    html = os.path.join(root, "feedback", ME, "ps1", "p1.html")
    with open(html, "a") as fh:
        fh.write("blahblahblah")
    me.ok("release_feedback", "ps1", "--course", "abc101", cwd=root)
    listed("feedback ready to be fetched", "no feedback available")
    make_feedback()
    listed("feedback ready to be fetched", "feedback ready to be fetched")
    me.ok("fetch_feedback", "ps1", "--course", "abc101")
    listed("feedback already fetched", "feedback already fetched")


# --- test_nbgrader_releasefeedback: test_single_file, test_single_student,
# test_student_id_exclude
def test_release_feedback_per_student(me, service):
    root = course_root(me)
    release(me)
    admin = Client(service, "admin")
    admin.execute(
        'mutation { addMembers(courseId: "abc101", role: STUDENT, '
        'members: [{user: "foo"}, {user: "bar"}]) { user } }'
    )
    for student in ("foo", "bar"):
        other = User(student, os.path.join(me.home, student), token=student, config=me.config)
        os.makedirs(other.home)
        other.ok("fetch_assignment", "ps1", "--course", "abc101")
        other.ok("submit", "ps1", "--course", "abc101")
    me.ok("collect", "ps1", "--course", "abc101", cwd=root)
    for student in ("foo", "bar"):
        folder = os.path.join(root, "feedback", student, "ps1")
        os.makedirs(folder)
        shutil.copy(os.path.join(root, "submitted", student, "ps1", "timestamp.txt"), folder)
        with open(os.path.join(folder, "p1.html"), "w") as fh:
            fh.write(f"<p>{student}</p>")

    def with_feedback() -> list[str]:
        return sorted(s["student"] for s in submissions(me) if s["feedback"])

    exclude = "--CourseDirectory.student_id_exclude=bar,baz"  # baz does not exist: fine
    me.ok("release_feedback", "ps1", "--course", "abc101", exclude, cwd=root)
    assert with_feedback() == ["foo"]
    me.ok("release_feedback", "ps1", "--course", "abc101", "--student", "bar", cwd=root)
    assert with_feedback() == ["bar", "foo"]
    # Releasing again replaces rather than fails.
    me.ok("release_feedback", "ps1", "--course", "abc101", cwd=root)
    assert with_feedback() == ["bar", "foo"]
