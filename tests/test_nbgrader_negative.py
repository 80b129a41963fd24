"""Unhappy paths and costs of the nbgrader plugins, through nbgrader's own apps."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from nbgrader.apps.api import NbGraderAPI
from nbgrader.utils import parse_utc
from traitlets.config import Config

from ngshare_gql.client import DOWNLOAD_WORKERS, Client, ClientError, LocalFile
from ngshare_gql.nbgrader.exchange import Exchange
from ngshare_gql.nbgrader.submit import SUBMIT, ExchangeSubmit
from tests.nbgrader_flow import User, environment, plugin_config
from tests.servers import free_port, gunicorn_server, service_env

pytestmark = pytest.mark.slow

ASSIGNMENTS = itertools.count(1)
NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n'


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("service")
    env = service_env(tmp, NGSHARE_MAX_FILE_SIZE="100000")
    with gunicorn_server(env, workers=1) as url:
        admin = Client(url, "admin")
        for course, teacher, students in (
            ("c101", "teacher", ["alice", "bob", "carol"]),
            ("other", "other_teacher", ["mallory"]),
        ):
            admin.execute(
                """mutation($c: String!, $i: String!, $s: [MemberInput!]!) {
                  createCourse(id: $c) { id }
                  a: addMembers(courseId: $c, role: INSTRUCTOR, members: [{user: $i}]) { user }
                  b: addMembers(courseId: $c, role: STUDENT, members: $s) { user }
                }""",
                {"c": course, "i": teacher, "s": [{"user": s} for s in students]},
            )
        yield url


@pytest.fixture
def people(tmp_path, service):
    """A teacher who released a fresh assignment of c101, a factory for other users,
    and the assignment's name (tests share one service)."""

    def person(name: str, course: str = "c101") -> User:
        home = str(tmp_path / name)
        os.makedirs(home, exist_ok=True)
        config = {
            **plugin_config(service),
            "CourseDirectory.course_id": course,
            "CourseDirectory.root": home,
            "Exchange.cache": str(tmp_path / f"{name}-cache"),
        }
        return User(name, home, token=name, config=config)

    teacher = person("teacher")
    ps = f"ps{next(ASSIGNMENTS)}"
    write(teacher.home, f"release/{ps}/{ps}.ipynb", NOTEBOOK)
    teacher.ok("release_assignment", ps)
    return teacher, person, ps


def count_graphql_requests(monkeypatch) -> list[str]:
    """A list that grows by one for each GraphQL request any Client sends from now on."""
    calls: list[str] = []
    original_send = Client._send

    def counting(self, *args, **kwargs):
        calls.append("graphql")
        return original_send(self, *args, **kwargs)

    monkeypatch.setattr(Client, "_send", counting)
    return calls


def write(root: str, relative: str, text: str) -> str:
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)
    return path


def test_students_cannot_release_collect_or_release_feedback(people):
    _teacher, person, ps = people
    alice = person("alice")
    write(alice.home, "release/ps2/ps2.ipynb", NOTEBOOK)
    out = alice.fails("release_assignment", "ps2")
    assert "you are not an instructor of course 'c101'" in out
    out = alice.fails("collect", ps)
    assert "you are not an instructor of course 'c101'" in out
    write(alice.home, f"feedback/alice/{ps}/{ps}.html", "<p>I give myself full marks</p>")
    write(alice.home, f"feedback/alice/{ps}/timestamp.txt", "2026-01-01 00:00:00.000000 UTC")
    out = alice.fails("release_feedback", ps)
    assert "you are not an instructor of course 'c101'" in out


def test_outsiders_cannot_fetch_and_unreleased_is_explained(people):
    _teacher, person, ps = people
    mallory = person("mallory", course="c101")
    out = mallory.fails("fetch_assignment", ps)
    assert "you are not a member of course 'c101'" in out
    assert not os.path.exists(os.path.join(mallory.home, ps))
    alice = person("alice")
    out = alice.fails("fetch_assignment", "ps9")
    assert "assignment 'ps9' is not released in course 'c101'" in out
    assert not os.path.exists(os.path.join(alice.home, "ps9"))


def test_an_instructor_trying_the_student_side_is_told_how(people, service):
    """Only a course's students submit (nbgrader's exchange lets anyone): an instructor
    who fetches their own assignment to try it is told what to do, then can."""
    teacher, person, ps = people
    teacher.ok("fetch_assignment", ps)
    out = teacher.fails("submit", ps)
    assert "you teach course 'c101' but are not one of its students" in out
    admin = person("admin")  # may do anything in any course, but teaches none
    admin.ok("fetch_assignment", ps)
    assert "you are not a student of course 'c101'" in admin.fails("submit", ps)
    service_admin = Client(service, "admin")
    service_admin.execute(
        'mutation { addMembers(courseId: "c101", role: STUDENT, members: [{user: "teacher"}])'
        " { user } }"
    )
    try:
        teacher.ok("submit", ps)
    finally:
        service_admin.execute(
            'mutation { removeMembers(courseId: "c101", users: ["teacher"], role: STUDENT) }'
        )


def test_a_mistyped_assignment_gets_nbgraders_guess(people):
    """Releasing or submitting a folder that is not there: "Did you mean" the closest
    one, as nbgrader's exchange says."""
    teacher, person, ps = people
    out = teacher.fails("release_assignment", f"{ps}x")
    released = os.path.join(teacher.home, "release", ".")
    assert f"Assignment not found at: {os.path.join(released, ps + 'x')}" in out
    assert f"Did you mean: {os.path.join(released, ps)}\n" in out
    alice = person("alice")
    alice.ok("fetch_assignment", ps)
    out = alice.fails("submit", f"{ps}x")
    assert f"Assignment not found at: {os.path.join(alice.home, ps + 'x')}" in out
    assert f"Did you mean: {os.path.join(alice.home, ps)}\n" in out


def test_fetching_a_mistyped_assignment_gets_nbgraders_guess_too(people):
    """fetch_assignment and fetch_feedback of an assignment the exchange has not released:
    nbgrader's "Assignment not found at", with the service's reason, and "Did you mean"
    the closest one it has."""
    _teacher, person, ps = people
    alice = person("alice")
    for command, where in (("fetch_assignment", "outbound"), ("fetch_feedback", "feedback")):
        base = f"{alice.config['Exchange.url']}c101/{where}/"
        out = alice.fails(command, f"{ps}x")
        assert (
            f"Assignment not found at: {base}{ps}x (assignment '{ps}x' is not released "
            "in course 'c101')"
        ) in out
        assert f"Did you mean: {base}{ps}\n" in out
    assert not os.path.exists(os.path.join(alice.home, f"{ps}x"))


def test_collecting_an_assignment_no_one_submitted_to_finds_nothing(people):
    """As with nbgrader's exchange: a warning and success, whether the assignment was
    released (no submissions yet) or never existed, and nothing written."""
    teacher, person, ps = people
    for name in (ps, "never-released"):
        out = teacher.ok("collect", name)
        assert f"No submissions of '{name}' for course 'c101' to collect" in out
        assert not os.path.exists(os.path.join(teacher.home, "submitted"))
    # A course that does not exist is still an error, even for an admin, who may see all.
    out = person("admin", course="c1O1").fails("collect", ps)
    assert "no course 'c1O1'" in out


def test_a_folder_linked_into_a_release_is_released_with_what_it_holds(people):
    """As shutil.copytree copies it for nbgrader's exchange; a link back up the tree,
    which would make that copy recurse until it fails, is left out with a warning."""
    teacher, person, _ps = people
    ps = f"ps{next(ASSIGNMENTS)}"
    write(teacher.home, f"release/{ps}/{ps}.ipynb", NOTEBOOK)
    write(teacher.home, "datasets/week1/table.csv", "a,b\n1,2\n")
    released, datasets = (os.path.join(teacher.home, d) for d in (f"release/{ps}", "datasets"))
    os.symlink(datasets, os.path.join(released, "data"))
    os.symlink(released, os.path.join(datasets, "up"))
    out = teacher.ok("release_assignment", ps)
    assert "a link leads back to a folder above it" in out
    alice = person("alice")
    alice.ok("fetch_assignment", ps)
    fetched = sorted(
        os.path.relpath(os.path.join(folder, name), os.path.join(alice.home, ps))
        for folder, _dirs, names in os.walk(os.path.join(alice.home, ps))
        for name in names
    )
    assert fetched == ["data/week1/table.csv", f"{ps}.ipynb"]


def test_a_link_to_nothing_is_left_out_with_a_warning(people):
    """A dangling link (a dataset link whose target moved) is not a file to send: the
    release and the submission go on without it, and say so."""
    teacher, person, _ps = people
    ps = f"ps{next(ASSIGNMENTS)}"
    write(teacher.home, f"release/{ps}/{ps}.ipynb", NOTEBOOK)
    os.symlink("/nonexistent/data.csv", os.path.join(teacher.home, "release", ps, "data.csv"))
    out = teacher.ok("release_assignment", ps)
    assert f"Not copying {os.path.join(teacher.home, 'release', '.', ps, 'data.csv')}" in out
    alice = person("alice")
    alice.ok("fetch_assignment", ps)
    assert sorted(os.listdir(os.path.join(alice.home, ps))) == [f"{ps}.ipynb"]
    os.symlink("gone.txt", os.path.join(alice.home, ps, "notes.txt"))
    out = alice.ok("submit", ps)
    assert "a link to nothing" in out
    teacher.ok("collect", ps)
    collected = os.path.join(teacher.home, "submitted", "alice", ps)
    assert sorted(os.listdir(collected)) == [
        f"{ps}.ipynb", "submission_secret.txt", "timestamp.txt"
    ]


def test_fetch_replace_brings_back_missing_empty_folders(people):
    """As nbgrader's copy_if_missing: --replace makes a missing folder again, empty ones
    included, and leaves what is there alone."""
    teacher, person, _ps = people
    ps = f"ps{next(ASSIGNMENTS)}"
    write(teacher.home, f"release/{ps}/{ps}.ipynb", NOTEBOOK)
    os.makedirs(os.path.join(teacher.home, "release", ps, "output", "plots"))
    teacher.ok("release_assignment", ps)
    alice = person("alice")
    alice.ok("fetch_assignment", ps)
    mine = os.path.join(alice.home, ps)
    assert os.path.isdir(os.path.join(mine, "output", "plots"))
    os.rmdir(os.path.join(mine, "output", "plots"))
    os.rmdir(os.path.join(mine, "output"))
    write(mine, f"{ps}.ipynb", "my work")
    out = alice.ok("fetch_assignment", ps, "--replace")
    assert "Creating missing directory" in out
    assert os.path.isdir(os.path.join(mine, "output", "plots"))
    with open(os.path.join(mine, f"{ps}.ipynb")) as fh:
        assert fh.read() == "my work"


@pytest.mark.parametrize(
    "selection",
    [
        '--CourseDirectory.include=["*.ipynb", "*.txt"]',
        "--CourseDirectory.max_file_size=2",
        '--CourseDirectory.ignore=["*.py"]',
    ],
)
def test_collect_makes_the_folders_of_files_it_leaves_out(people, selection):
    """As copytree in nbgrader's collect: a folder is made even when include,
    max_file_size or ignore drop every file in it; an ignored folder is not."""
    teacher, person, ps = people
    alice = person("alice")
    alice.ok("fetch_assignment", ps)
    write(alice.home, f"{ps}/code/deep/helper.py", "x" * 3000)
    write(alice.home, f"{ps}/notes.txt", "kept")
    alice.ok("submit", ps)
    teacher.ok("collect", ps, selection)
    submitted = os.path.join(teacher.home, "submitted", "alice", ps)
    assert os.path.isdir(os.path.join(submitted, "code", "deep"))
    assert not os.path.exists(os.path.join(submitted, "code", "deep", "helper.py"))
    with open(os.path.join(submitted, "notes.txt")) as fh:
        assert fh.read() == "kept"


def test_fetch_makes_the_folders_of_files_it_ignores(people):
    """As copytree in nbgrader's fetch: a released file the student's
    CourseDirectory.ignore leaves out still has its folder made."""
    teacher, person, _ps = people
    ps = f"ps{next(ASSIGNMENTS)}"
    write(teacher.home, f"release/{ps}/{ps}.ipynb", NOTEBOOK)
    write(teacher.home, f"release/{ps}/lib/__pycache__/mod.pyc", "bytecode")
    write(teacher.home, f"release/{ps}/cache/mod.pyc", "bytecode")
    teacher.ok("release_assignment", ps, "--CourseDirectory.ignore=[]")
    alice = person("alice")
    alice.ok("fetch_assignment", ps)  # the default ignore: *.pyc, __pycache__, ...
    mine = os.path.join(alice.home, ps)
    assert os.path.isdir(os.path.join(mine, "cache")) and os.path.isdir(os.path.join(mine, "lib"))
    assert os.listdir(os.path.join(mine, "cache")) == []
    assert os.listdir(os.path.join(mine, "lib")) == []
    # --replace makes them again, as nbgrader's copy_if_missing does.
    os.rmdir(os.path.join(mine, "cache"))
    out = alice.ok("fetch_assignment", ps, "--replace")
    assert "Creating missing directory" in out
    assert os.path.isdir(os.path.join(mine, "cache"))


def test_too_large_file_fails_with_the_limit(people):
    _teacher, person, ps = people
    alice = person("alice")
    alice.ok("fetch_assignment", ps)
    write(alice.home, f"{ps}/data.csv", "x" * 150_000)
    out = alice.fails("submit", ps)
    assert "too large for the exchange" in out and "100000 bytes" in out


def test_students_only_ever_receive_their_own_feedback(people, monkeypatch):
    teacher, person, ps = people
    students = {name: person(name) for name in ("alice", "bob")}
    for name, student in students.items():
        student.ok("fetch_assignment", ps)
        write(student.home, f"{ps}/answer.txt", f"{name}'s answer")
        student.ok("submit", ps)
    teacher.ok("collect", ps)
    for name in students:
        submitted = os.path.join(teacher.home, "submitted", name, ps)
        with open(os.path.join(submitted, "answer.txt")) as fh:
            assert fh.read() == f"{name}'s answer"
        with open(os.path.join(submitted, "timestamp.txt")) as fh:
            timestamp = fh.read()
        write(teacher.home, f"feedback/{name}/{ps}/{ps}.html", f"<p>feedback for {name}</p>")
        write(teacher.home, f"feedback/{name}/{ps}/timestamp.txt", timestamp)
    teacher.ok("release_feedback", ps)

    for name, student in students.items():
        student.ok("fetch_feedback", ps)
        fetched = []
        for dirpath, _dirs, files in os.walk(os.path.join(student.home, ps, "feedback")):
            for f in files:
                with open(os.path.join(dirpath, f)) as fh:
                    fetched.append(fh.read())
        assert fetched == [f"<p>feedback for {name}</p>"]
    # carol submitted nothing: nothing to fetch, and nothing of the others.
    carol = person("carol")
    carol.ok("fetch_feedback", ps)
    assert not os.path.exists(os.path.join(carol.home, ps, "feedback"))
    # Asking for another student's id does not change whose feedback comes back.
    students["alice"].ok("fetch_feedback", ps, "--student=bob")
    for dirpath, _dirs, files in os.walk(os.path.join(students["alice"].home, ps, "feedback")):
        for f in files:
            with open(os.path.join(dirpath, f)) as fh:
                assert "bob" not in fh.read()


def test_collect_student_takes_a_pattern_and_marks_only_those_collected(
    people, service, monkeypatch
):
    """nbgrader's exchange globs "<student>+<assignment>+*", so --student='[ac]*' collects
    alice's and carol's alone, in one more request than a plain collect; bob's stays
    uncollected until a collect takes it."""
    teacher, person, ps = people
    for name in ("alice", "bob", "carol"):
        student = person(name)
        student.ok("fetch_assignment", ps)
        student.ok("submit", ps)
    calls = count_graphql_requests(monkeypatch)
    teacher.ok("collect", ps, "--student=[ac]*")
    assert len(calls) == 3  # the due time, who submitted, one collect
    assert sorted(os.listdir(os.path.join(teacher.home, "submitted"))) == ["alice", "carol"]
    monkeypatch.undo()
    uncollected = Client(service, "teacher").execute(
        """query($a: String!) { course(id: "c101") { assignment(name: $a) {
             submissions(filter: {uncollected: true}) { student } } } }""",
        {"a": ps},
    )["course"]["assignment"]["submissions"]
    assert uncollected == [{"student": "bob"}]
    out = teacher.ok("collect", ps, "--student=[xyz]*")
    assert f"No submissions of '{ps}' for course 'c101' to collect" in out
    teacher.ok("collect", ps)
    assert sorted(os.listdir(os.path.join(teacher.home, "submitted"))) == [
        "alice", "bob", "carol"
    ]


def test_feedback_for_a_submission_the_exchange_does_not_hold_is_named(people):
    """Feedback goes with a submission in the exchange. For one collected elsewhere (by
    hand, another exchange) there is none: the release names those students, and fails
    when it released nothing at all."""
    teacher, person, ps = people
    alice = person("alice")
    alice.ok("fetch_assignment", ps)
    alice.ok("submit", ps)
    teacher.ok("collect", ps)
    with open(os.path.join(teacher.home, "submitted", "alice", ps, "timestamp.txt")) as fh:
        timestamp = fh.read()
    write(teacher.home, f"feedback/bob/{ps}/{ps}.html", "<p>for bob</p>")
    write(teacher.home, f"feedback/bob/{ps}/timestamp.txt", "2026-01-01 00:00:00.000000 UTC")
    why = f"Not released (no submission of '{ps}' in the exchange at the timestamp in their"
    out = teacher.fails("release_feedback", ps)
    assert why in out and "timestamp.txt): bob" in out
    write(teacher.home, f"feedback/alice/{ps}/{ps}.html", "<p>for alice</p>")
    write(teacher.home, f"feedback/alice/{ps}/timestamp.txt", timestamp)
    out = teacher.ok("release_feedback", ps)
    assert why in out and "Feedback released to:" in out
    alice.ok("fetch_feedback", ps)
    assert os.listdir(os.path.join(alice.home, ps, "feedback"))


def test_nbgraders_outdated_config_sections_still_apply(people):
    """nbgrader before 0.6 called them ExchangeFetch and ExchangeRelease; its exchange
    still reads them, with a warning, and so do ours."""
    teacher, person, ps = people
    alice = person("alice")
    alice.ok("fetch_assignment", ps)
    os.remove(os.path.join(alice.home, ps, f"{ps}.ipynb"))
    alice.config["ExchangeFetch.replace_missing_files"] = True
    out = alice.ok("fetch_assignment", ps)
    assert "Use ExchangeFetchAssignment in config, not ExchangeFetch" in out
    assert os.path.exists(os.path.join(alice.home, ps, f"{ps}.ipynb"))
    teacher.config["ExchangeRelease.force"] = True
    out = teacher.ok("release_assignment", ps)
    assert "Use ExchangeReleaseAssignment in config, not ExchangeRelease" in out


def test_collect_costs_constant_round_trips_and_resubmit_sends_no_unchanged_bytes(
    people, monkeypatch
):
    teacher, person, ps = people
    sent_files: list[list[str]] = []
    original = Client.execute_with_files

    def recording(self, query, variables, uploads, progress=None):
        sent_files.append(sorted(f.path for f in uploads.values()))
        return original(self, query, variables, uploads, progress)

    monkeypatch.setattr(Client, "execute_with_files", recording)
    students = [person(name) for name in ("alice", "bob", "carol")]
    for student in students:
        student.ok("fetch_assignment", ps)
        write(student.home, f"{ps}/big.bin", student.name * 1000)
        student.ok("submit", ps)
    sent_files.clear()
    students[0].ok("submit", ps)  # unchanged: only the new timestamp and secret travel
    assert sent_files == [["submission_secret.txt", "timestamp.txt"]]

    calls = count_graphql_requests(monkeypatch)
    batches: list[list[str]] = []
    original_many = Client.download_many

    def batching(self, downloads, progress=None, workers=DOWNLOAD_WORKERS):
        batches.append(sorted(os.path.basename(d.dest) for d in downloads))
        return original_many(self, downloads, progress, workers)

    monkeypatch.setattr(Client, "download_many", batching)
    out = teacher.ok("collect", ps)
    assert f"Processing 3 submissions of '{ps}' for course 'c101'" in out
    assert len(calls) == 2  # the due time, then one collect for every student
    # Every student's files in one batch of downloads, a few at a time.
    files = ["big.bin", f"{ps}.ipynb", "submission_secret.txt", "timestamp.txt"]
    assert batches == [sorted(files * 3)]
    for student in students:
        assert os.path.isfile(os.path.join(teacher.home, "submitted", student.name, ps, "big.bin"))


def test_a_failed_download_leaves_whole_submissions_or_none_and_keeps_the_old_one(
    people, monkeypatch
):
    """Collect downloads every student's files together, a few at a time: when one
    download fails, each submission is in place whole or not at all, an updated one
    keeps its predecessor, and no temporary folder is left behind."""
    teacher, person, ps = people
    students = [person(name) for name in ("alice", "bob", "carol")]
    for student in students:
        student.ok("fetch_assignment", ps)
        write(student.home, f"{ps}/answer.txt", f"{student.name} v1")
        student.ok("submit", ps)
    original = Client.download
    failing: list[str] = []

    def download(self, url, dest, sha256, *args):
        if any(f"{os.sep}{name}{os.sep}" in dest for name in failing):
            raise ClientError("download of answer.txt failed: HTTP 500", "DOWNLOAD_FAILED")
        return original(self, url, dest, sha256, *args)

    monkeypatch.setattr(Client, "download", download)
    submitted = os.path.join(teacher.home, "submitted")

    def leftovers() -> list[str]:
        return [d for _, dirs, _ in os.walk(submitted) for d in dirs if ".collecting-" in d]

    whole = sorted([f"{ps}.ipynb", "answer.txt", "submission_secret.txt", "timestamp.txt"])
    failing[:] = ["bob"]
    out = teacher.fails("collect", ps)
    assert "download of answer.txt failed: HTTP 500" in out
    assert not os.path.exists(os.path.join(submitted, "bob", ps))
    missed = re.search(r"Not collected \((.+)\): ([a-z, ]+); run collect again", out)
    assert missed and "bob" in missed.group(2).split(", ")
    assert missed.group(1) == "download of answer.txt failed: HTTP 500"
    for name in ("alice", "carol"):  # collected whole, or not at all, and named if not
        folder = os.path.join(submitted, name, ps)
        if os.path.exists(folder):
            assert sorted(os.listdir(folder)) == whole
        assert os.path.exists(folder) != (name in missed.group(2).split(", "))
    assert leftovers() == []

    failing[:] = []
    teacher.ok("collect", ps)
    for student in students:
        folder = os.path.join(submitted, student.name, ps)
        assert sorted(os.listdir(folder)) == whole
        with open(os.path.join(folder, "answer.txt")) as f:
            assert f.read() == f"{student.name} v1"

    time.sleep(1.1)  # a later timestamp for the resubmission
    write(students[0].home, f"{ps}/answer.txt", "alice v2")
    students[0].ok("submit", ps)
    failing[:] = ["alice"]
    teacher.fails("collect", "--update", ps)
    with open(os.path.join(submitted, "alice", ps, "answer.txt")) as f:
        assert f.read() == "alice v1"  # the collected one is kept until its successor is whole
    assert leftovers() == []
    failing[:] = []
    teacher.ok("collect", "--update", ps)
    with open(os.path.join(submitted, "alice", ps, "answer.txt")) as f:
        assert f.read() == "alice v2"


def test_a_submission_over_max_dir_size_ends_collect_and_names_who_is_missing(people):
    """As nbgrader's collect: a submission over CourseDirectory.max_dir_size raises its
    RuntimeError and ends the collect, the ones before it collected whole; the students
    not collected are named."""
    teacher, person, ps = people
    for name in ("alice", "bob", "carol"):
        student = person(name)
        student.ok("fetch_assignment", ps)
        write(student.home, f"{ps}/answer.txt", "x" * (5000 if name == "bob" else 10))
        student.ok("submit", ps)
    out = teacher.raises(RuntimeError, "collect", ps, "--CourseDirectory.max_dir_size=3")
    assert "Directory size is too big" in out
    missed = re.search(r"Not collected \((.+)\): ([a-z, ]+); run collect again", out)
    assert missed and "bob" in missed.group(2).split(", ")
    assert missed.group(1).startswith("Directory size is too big. Size is")
    submitted = os.path.join(teacher.home, "submitted")
    for name in ("alice", "bob", "carol"):
        folder = os.path.join(submitted, name, ps)
        assert os.path.exists(folder) != (name in missed.group(2).split(", ")), name
    assert [d for _, dirs, _ in os.walk(submitted) for d in dirs if ".collecting-" in d] == []
    assert "Not collected" not in teacher.ok("collect", ps)  # the limit lifted: all of them
    assert sorted(os.listdir(submitted)) == ["alice", "bob", "carol"]


def test_stopped_service_exits_1_with_the_url(tmp_path, service):
    """The real ``nbgrader`` command against a service that is not there."""
    dead = f"http://127.0.0.1:{free_port()}/services/ngshare-gql/"
    home = tmp_path / "student"
    home.mkdir()
    config = plugin_config(dead)
    args = [f"--{k}={v}" for k, v in config.items()]
    env = dict(os.environ, JUPYTERHUB_API_TOKEN="alice", JUPYTER_CONFIG_PATH=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", "fetch_assignment", "ps1", "--course", "c101", *args],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert f"cannot reach the exchange service at {dead}" in result.stderr
    assert "nbgrader fetch_assignment failed" in result.stderr


@pytest.mark.parametrize("up", [True, False])
def test_the_formgrader_names_the_service_it_cannot_reach(tmp_path, service, up):
    """The formgrader's "exchange directory at ... does not exist" warning shows the
    exchange's ``root``: ours is the service's URL, not a folder no one uses."""
    url = service if up else f"http://127.0.0.1:{free_port()}/services/ngshare-gql/"
    config = Config()
    for key, value in {**plugin_config(url), "CourseDirectory.course_id": "c101"}.items():
        section, name = key.split(".")
        setattr(getattr(config, section), name, value)
    config.CourseDirectory.root = str(tmp_path)
    with environment(str(tmp_path), {"JUPYTERHUB_API_TOKEN": "teacher"}):
        api = NbGraderAPI(config=config)
    assert api.exchange_missing is not up
    assert api.exchange_root == url


def test_before_duedate_uses_the_service_due_time_without_a_local_gradebook(people, tmp_path):
    """release_assignment sends the gradebook's due date to the service; a collect on a
    machine with no gradebook entry then still honours --before-duedate."""
    teacher, person, ps = people
    alice = person("alice")
    alice.ok("fetch_assignment", ps)
    alice.ok("submit", ps)
    time.sleep(0.05)
    due = datetime.now(timezone.utc).replace(tzinfo=None)
    time.sleep(0.05)
    alice.ok("submit", ps)
    early, late = sorted(
        name.split("+")[2]
        for name in os.listdir(os.path.join(str(alice.config["Exchange.cache"]), "c101"))
    )
    teacher.ok("db", "assignment", "add", ps, f"--duedate={due.isoformat()} UTC")
    teacher.ok("release_assignment", ps, "--force")

    elsewhere = User(
        "teacher",
        str(tmp_path / "laptop"),
        token="teacher",
        config={**teacher.config, "CourseDirectory.root": str(tmp_path / "laptop")},
    )
    os.makedirs(elsewhere.home)
    elsewhere.ok("collect", ps, "--before-duedate")
    stamp = os.path.join(elsewhere.home, "submitted", "alice", ps, "timestamp.txt")
    with open(stamp) as fh:
        assert fh.read() == early
    elsewhere.ok("collect", ps, "--update")
    with open(stamp) as fh:
        assert fh.read() == late


def test_collect_warns_of_a_timestamp_far_from_when_the_service_received_it(
    people, monkeypatch
):
    """nbgrader judges lateness by the timestamp.txt a submission carries, which the
    student's side writes.  The service knows when it received each one; collect warns
    where the collected file's time lies well apart from that, either way, and names a
    due date between them."""
    teacher, person, ps = people

    def submit_shifted(student: User, assignment: str, minutes: float, file_only=False):
        """Submit with a timestamp ``minutes`` before now (after, if negative); with
        ``file_only``, as an altered client would: only timestamp.txt says so."""
        now = datetime.now(timezone.utc)
        then = (now - timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S.%f %Z")
        real_call = ExchangeSubmit.call

        def call(app: ExchangeSubmit, query: str, variables=None, uploads=None) -> dict:
            if file_only and query == SUBMIT:
                variables = {**variables, "ts": now.strftime("%Y-%m-%d %H:%M:%S.%f %Z")}
            return real_call(app, query, variables, uploads)

        with monkeypatch.context() as patch:
            patch.setattr(ExchangeSubmit, "set_timestamp", lambda a: setattr(a, "timestamp", then))
            patch.setattr(ExchangeSubmit, "call", call)
            student.ok("submit", assignment)

    def warnings(out: str) -> list[str]:
        return sorted(line for line in out.splitlines() if "judges lateness by" in line)

    # Due half an hour ago: a timestamp set back an hour hides a late submission.
    due = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=30)
    teacher.ok("db", "assignment", "add", ps, f"--duedate={due.isoformat()} UTC")
    teacher.ok("release_assignment", ps, "--force")
    for name, minutes in (("alice", 60), ("bob", 0), ("carol", 4)):
        student = person(name)
        student.ok("fetch_assignment", ps)
        submit_shifted(student, ps, minutes)
    said = warnings(teacher.ok("collect", ps, "--before-duedate"))
    assert len(said) == 1, said
    assert re.search(
        rf"alice's submission of '{ps}', stamped .* UTC, reached the service at .* UTC, 60 "
        rf"minutes after its timestamp and after the due date \({due:%Y-%m-%d %H:%M:%S} "
        r"UTC\): a slow upload, a wrong clock or an altered timestamp.txt; ",
        said[0],
    ), said
    # alice's set-back copy is still what --before-duedate collects, as nbgrader would.
    stamp = os.path.join(teacher.home, "submitted", "alice", ps, "timestamp.txt")
    with open(stamp) as fh:
        assert parse_utc(fh.read()) < due
    # Collected already, nothing new: nothing said again.
    assert warnings(teacher.ok("collect", ps)) == []

    # Due in half an hour: a clock two hours ahead makes an early submission look late;
    # a timestamp.txt set back years, sent with a timestamp of now (an altered client),
    # is what nbgrader reads, so it is what collect checks.
    later = f"{ps}b"
    due = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(minutes=30)
    write(teacher.home, f"release/{later}/{later}.ipynb", NOTEBOOK)
    teacher.ok("db", "assignment", "add", later, f"--duedate={due.isoformat()} UTC")
    teacher.ok("release_assignment", later)
    for name, minutes, file_only in (
        ("alice", 25 * 365 * 24 * 60, True), ("bob", -121, False), ("carol", -4, False)
    ):
        student = person(name)
        student.ok("fetch_assignment", later)
        submit_shifted(student, later, minutes, file_only)
    said = warnings(teacher.ok("collect", later))
    assert len(said) == 2, said
    assert re.search(r"alice's .*, 9125 days after its timestamp: a slow upload", said[0])
    assert re.search(
        r"bob's .* UTC, 2 hours before its timestamp and before the due date "
        rf"\({due:%Y-%m-%d %H:%M:%S} UTC\): a wrong clock or an altered timestamp.txt; ",
        said[1],
    ), said


def test_a_service_older_than_the_plugins_is_named_as_such(people, monkeypatch, service):
    """Plugins that ask for what the service's schema lacks (a service not yet upgraded
    to the plugins' version) say so and what to do, for a field asked for, an input
    field sent and an argument given, instead of GraphQL's validation message."""
    teacher, person, ps = people
    from ngshare_gql.nbgrader import fetch_assignment

    # Stand-ins for a newer schema: a File field, a FileInput field and an argument.
    monkeypatch.setattr(
        fetch_assignment, "FETCH", fetch_assignment.FETCH.replace("url", "url addedLater")
    )
    real_as_input = LocalFile.as_input
    monkeypatch.setattr(LocalFile, "as_input", lambda f: {**real_as_input(f), "addedLater": 1})
    older = f"the exchange service at {service} is older than this nbgrader plugin"
    out = person("alice").fails("fetch_assignment", ps)
    assert f"{older} (it has no File.addedLater): upgrade the service" in out
    write(teacher.home, f"release/{ps}b/{ps}b.ipynb", NOTEBOOK)
    out = teacher.fails("release_assignment", f"{ps}b")
    assert f"{older} (it has no FileInput.addedLater)" in out
    assert "FileStorage" not in out  # not the whole input echoed back
    newer = '{ course(id: "c101") { assignments(since: 1) { name } } }'
    with pytest.raises(ClientError) as refused:
        Client(service, "teacher").execute(newer)
    said = Exchange.explain(SimpleNamespace(service_url=service), refused.value)
    assert said.startswith(f"{older} (it has no Course.assignments.since)")
