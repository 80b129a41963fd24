"""The whole nbgrader cycle through the real nbgrader apps, once through nbgrader's
default filesystem exchange and once through our plugins against a live service,
with the files on disk and the Assignment List dicts compared between the two."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest
from nbgrader.utils import get_username, parse_utc

from ngshare_gql.client import Client
from tests.nbgrader_flow import User, plugin_config
from tests.servers import gunicorn_server, service_env

pytestmark = pytest.mark.slow

COURSE = "course101"
STUDENT = get_username()  # the default exchange names students by OS user
INSTRUCTOR = "teacher"


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory) -> str:
    """``nbgrader quickstart`` once (it is slow); each run gets a copy."""
    root = str(tmp_path_factory.mktemp("quickstart"))
    User("quickstart", root).ok("quickstart", COURSE)
    return os.path.join(root, COURSE)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("service")
    with gunicorn_server(service_env(tmp), workers=1) as url:
        admin = Client(url, "admin")
        admin.execute(
            """mutation($c: String!, $i: String!, $s: String!) {
              createCourse(id: $c) { id }
              a: addMembers(courseId: $c, role: INSTRUCTOR, members: [{user: $i}]) { user }
              b: addMembers(courseId: $c, role: STUDENT, members: [{user: $s}]) { user }
            }""",
            {"c": COURSE, "i": INSTRUCTOR, "s": STUDENT},
        )
        yield url


def make_people(tmp, quickstart: str, exchange: dict[str, object]):
    """An instructor with a copy of the quickstart course and a student with their own
    home and cache; both use ``exchange`` config."""
    instructor_home = os.path.join(tmp, "instructor")
    shutil.copytree(quickstart, os.path.join(instructor_home, COURSE))
    student_home = os.path.join(tmp, "student")
    os.makedirs(student_home)
    common = {"CourseDirectory.course_id": COURSE, **exchange}
    instructor = User(INSTRUCTOR, os.path.join(instructor_home, COURSE), config=dict(common))
    student = User(
        STUDENT,
        student_home,
        config={**common, "Exchange.cache": os.path.join(tmp, "student-cache")},
    )
    return instructor, student


def run_cycle(instructor: User, student: User) -> dict:
    """Every step an instructor and a student take; returns what they saw."""
    seen: dict = {}
    instructor.ok("generate_assignment", "ps1")
    # Empty folders travel too: one the notebooks write into, and one nested.
    for empty in ("output", "data/raw"):
        os.makedirs(os.path.join(instructor.home, "release", "ps1", *empty.split("/")))
    for path in tree(os.path.join(instructor.home, "release", "ps1")):
        os.utime(os.path.join(instructor.home, "release", "ps1", path), ns=(RELEASED, RELEASED))
    instructor.ok("release_assignment", "ps1")
    seen["released"] = student.exchange_list()
    student.ok("fetch_assignment", "ps1")
    seen["fetched"] = student.exchange_list()
    nb = os.path.join(student.home, "ps1", "problem1.ipynb")
    os.makedirs(os.path.join(student.home, "ps1", "scratch"))
    student.ok("submit", "ps1")
    with open(nb) as fh:
        content = json.load(fh)
    content["cells"][0]["source"] = "edited before the second submission\n"
    with open(nb, "w") as fh:
        json.dump(content, fh)
    os.utime(nb, ns=(EDITED, EDITED))
    student.ok("submit", "ps1")
    seen["inbound"] = instructor.exchange_list(inbound=True)
    seen["collect_log"] = instructor.ok("collect", "ps1")
    instructor.ok("autograde", "ps1", "--create")
    instructor.ok("generate_feedback", "ps1")
    seen["release_feedback_log"] = instructor.ok("release_feedback", "ps1")
    seen["inbound_with_feedback"] = instructor.exchange_list(inbound=True)
    seen["cached_before_fetch"] = student.exchange_list(cached=True)
    student.ok("fetch_feedback", "ps1")
    seen["cached"] = student.exchange_list(cached=True)
    seen["list_cached_log"] = student.ok("list", "--cached")
    clear_inbound_with_feedback_pending(instructor, student, seen)
    return seen


def clear_inbound_with_feedback_pending(instructor: User, student: User, seen: dict) -> None:
    """The instructor releases changed feedback, then clears the inbound before the
    student fetches it: that feedback still arrives, and feedback can be released again
    after the clean-up (nbgrader's exchange keeps feedback outside the inbound)."""
    html = os.path.join(instructor.home, "feedback", STUDENT, "ps1", "problem1.html")
    fetched = os.path.join(student.home, "ps1", "feedback")

    def revise_and_release(note: str) -> str:
        with open(html, "a") as fh:
            fh.write(note)
        return instructor.ok("release_feedback", "ps1")

    def student_has(note: str) -> bool:
        student.ok("fetch_feedback", "ps1")
        latest = os.path.join(fetched, sorted(os.listdir(fetched))[-1], "problem1.html")
        with open(latest) as fh:
            return fh.read().endswith(note)

    revise_and_release("<p>revised before the clean-up</p>")
    seen["remove_inbound_log"] = instructor.ok("list", "--inbound", "--remove", "ps1")
    seen["inbound_after_remove"] = instructor.exchange_list(inbound=True)
    seen["pending_feedback_kept"] = student_has("<p>revised before the clean-up</p>")
    seen["release_feedback_after_remove_log"] = revise_and_release("<p>after it</p>")
    seen["feedback_released_after_remove"] = student_has("<p>after it</p>")
    seen["cached_after_remove"] = student.exchange_list(cached=True)


# Modification times given to the released files and to the student's edited notebook,
# in whole microseconds (the service keeps microseconds), long before any test runs.
RELEASED = 981_173_106_789_012_000  # 2001-02-03 04:05:06.789012 UTC, in ns
EDITED = 1_015_218_367_000_001_000  # 2002-03-04 05:06:07.000001 UTC


def times(root: str) -> dict[str, str]:
    """Each file's modification time: one of the two given above, or made during the run."""
    names = {RELEASED: "released", EDITED: "edited"}
    return {
        path: names.get(os.stat(os.path.join(root, path)).st_mtime_ns, "during the run")
        for path in tree(root)
    }


def folders(root: str) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(dirpath, name), root)
        for dirpath, dirs, _files in os.walk(root)
        for name in dirs
    )


def tree(root: str) -> dict[str, bytes]:
    found = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as fh:
                found[os.path.relpath(path, root)] = fh.read()
    return found


class Normaliser:
    """Replaces what legitimately differs between the two runs: temporary roots,
    the exchange location, submission timestamps and random strings."""

    def __init__(self, roots: dict[str, str], timestamps: list[str]) -> None:
        self.roots = roots
        self.timestamps = {ts: f"<T{i}>" for i, ts in enumerate(sorted(timestamps))}

    def text(self, value: str) -> str:
        for root, label in self.roots.items():
            value = value.replace(root, label)
        for ts, label in self.timestamps.items():
            value = value.replace(ts, label)
        return re.sub(r"\+[A-Za-z0-9_-]{12}(?=/|$)", "", value)  # default's random string

    def __call__(self, value):
        if isinstance(value, dict):
            return {k: (None if k == "random_string" else self(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value


def submission_timestamps(student: User) -> list[str]:
    cache = os.path.join(student.config["Exchange.cache"], COURSE)
    return sorted(name.split("+")[2] for name in os.listdir(cache))


def test_cycle_matches_default_exchange(tmp_path, quickstart, service):
    runs = {}
    for kind in ("default", "ngshare"):
        base = str(tmp_path / kind)
        if kind == "default":
            exchange_root = os.path.join(base, "exchange")
            os.makedirs(exchange_root)
            config = {"Exchange.root": exchange_root}
            location = exchange_root + "/"
        else:
            config = plugin_config(service)
            location = service
        instructor, student = make_people(base, quickstart, config)
        if kind == "ngshare":
            instructor.token, student.token = INSTRUCTOR, STUDENT
        seen = run_cycle(instructor, student)
        timestamps = submission_timestamps(student)
        assert len(timestamps) == 2
        normalise = Normaliser(
            {
                location: "<EXCHANGE>/",
                instructor.home: "<COURSE>",
                student.home: "<HOME>",
                student.config["Exchange.cache"]: "<CACHE>",
            },
            timestamps,
        )
        runs[kind] = {
            "seen": normalise(seen),
            "instructor": {normalise.text(k): v for k, v in tree(instructor.home).items()},
            "student": {normalise.text(k): v for k, v in tree(student.home).items()},
            "cache": {
                normalise.text(k): v for k, v in tree(student.config["Exchange.cache"]).items()
            },
            "timestamps": timestamps,
            "times": {
                side: {normalise.text(k): v for k, v in times(root).items()}
                for side, root in (
                    ("instructor", instructor.home),
                    ("student", student.home),
                    ("cache", student.config["Exchange.cache"]),
                )
            },
            "folders": {
                side: [normalise.text(f) for f in folders(root)]
                for side, root in (
                    ("instructor", instructor.home),
                    ("student", student.home),
                    ("cache", student.config["Exchange.cache"]),
                )
            },
        }

    default, ours = runs["default"], runs["ngshare"]
    seen = ours["seen"]
    # What each listing shows, so the comparisons below are not between empty lists.
    assert [(a["assignment_id"], a["status"]) for a in seen["released"]] == [("ps1", "released")]
    assert seen["released"][0]["path"] == "<EXCHANGE>/course101/outbound/ps1"
    assert [n["notebook_id"] for n in seen["fetched"][0]["notebooks"]] == ["problem1", "problem2"]
    assert seen["fetched"][0]["status"] == "fetched"
    (inbound,) = seen["inbound"]
    assert [s["timestamp"] for s in inbound["submissions"]] == ["<T0>", "<T1>"]
    assert [
        s["has_exchange_feedback"] for s in seen["inbound_with_feedback"][0]["submissions"]
    ] == [
        False,
        True,
    ]
    latest = seen["cached"][0]["submissions"][1]
    assert latest["has_local_feedback"] and not latest["feedback_updated"]
    assert latest["local_feedback_path"] == "<HOME>/ps1/feedback/<T1>"
    # The Assignment List dicts, field by field, in every mode.
    for key in (
        "released",
        "fetched",
        "inbound",
        "inbound_with_feedback",
        "cached_before_fetch",
        "cached",
    ):
        assert ours["seen"][key] == default["seen"][key], key
    assert ours["seen"]["list_cached_log"] == default["seen"]["list_cached_log"]
    assert "(feedback already fetched)" in ours["seen"]["list_cached_log"]
    # Clearing the inbound lost no feedback, on either side.
    for run in (default, ours):
        assert run["seen"]["inbound_after_remove"] == []
        assert run["seen"]["pending_feedback_kept"] is True
        assert run["seen"]["feedback_released_after_remove"] is True
    for key in ("remove_inbound_log", "cached_after_remove"):
        assert ours["seen"][key] == default["seen"][key], key
    assert "Not releasing" not in ours["seen"]["release_feedback_after_remove_log"]

    # The same files at the same paths on both sides, and the same folders, empty ones too.
    for side in ("instructor", "student", "cache"):
        assert sorted(ours[side]) == sorted(default[side]), side
        assert ours["folders"][side] == default["folders"][side], side
    # Copied files keep their modification times where nbgrader's copytree keeps them
    # (release, fetch, submit, collect) and not where its shutil.copy does not (feedback).
    for side in ("instructor", "student", "cache"):
        assert ours["times"][side] == default["times"][side], side
    assert ours["times"]["student"]["ps1/problem2.ipynb"] == "released"
    assert ours["times"]["instructor"][f"submitted/{STUDENT}/ps1/problem1.ipynb"] == "edited"
    assert ours["times"]["instructor"][f"submitted/{STUDENT}/ps1/problem2.ipynb"] == "released"
    assert ours["times"]["instructor"][f"submitted/{STUDENT}/ps1/timestamp.txt"] == "during the run"
    assert ours["times"]["student"]["ps1/feedback/<T1>/problem1.html"] == "during the run"
    for carried in ("ps1/output", "ps1/data/raw"):
        assert carried in ours["folders"]["student"]
    assert f"submitted/{STUDENT}/ps1/scratch" in ours["folders"]["instructor"]
    # Identical bytes where nothing run-specific is inside.
    for path, content in default["student"].items():
        if path.endswith(".ipynb"):
            assert ours["student"][path] == content, path
    for path, content in default["instructor"].items():
        if path.startswith(("source/", "release/", "submitted/")) and path.endswith(".ipynb"):
            assert ours["instructor"][path] == content, path

    # Collect took the latest submission; timestamp.txt carries it verbatim.
    latest = ours["timestamps"][-1]
    submitted = os.path.join(str(tmp_path / "ngshare" / "instructor" / COURSE), "submitted")
    with open(os.path.join(submitted, STUDENT, "ps1", "timestamp.txt")) as fh:
        assert fh.read() == latest
    assert parse_utc(latest) > parse_utc(ours["timestamps"][0])
    with open(os.path.join(submitted, STUDENT, "ps1", "submission_secret.txt")) as fh:
        assert len(fh.read()) == 128
    # Feedback landed under the submission it is for.
    feedback = os.path.join(str(tmp_path / "ngshare" / "student"), "ps1", "feedback", latest)
    assert sorted(os.listdir(feedback)) == ["problem1.html", "problem2.html"]
