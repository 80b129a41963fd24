"""Row locks on PostgreSQL: a release in progress holds its assignment against other
releases and unreleases, never against students submitting to it."""

from __future__ import annotations

import threading
import time

import pytest

from ngshare_gql.domain import assignments
from tests.conftest import GQL, release, submit

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


@pytest.fixture
def release_in_progress(app, monkeypatch):
    """Starts a forced re-release of c1/ps1 that stops, holding its locks, while it
    stores its files; ``held`` is set then, and setting ``done`` lets it finish."""
    held, done = threading.Event(), threading.Event()
    real = assignments.store_files

    def slow_store_files(*args, **kwargs):
        rows = real(*args, **kwargs)
        held.set()
        done.wait(30)
        return rows

    thread = threading.Thread(
        target=release, args=(GQL(app.test_client(), "ins"), "c1", "ps1", {"b.txt": b"b"}, True)
    )

    def start() -> tuple[threading.Event, threading.Event]:
        monkeypatch.setattr(assignments, "store_files", slow_store_files)
        thread.start()
        assert held.wait(10)
        return held, done

    yield start
    done.set()
    if thread.ident:
        thread.join(30)


def test_students_submit_while_a_release_holds_the_assignment(
    app, as_user, course, release_in_progress
):
    release(as_user("ins"), "c1", "ps1", {"a.txt": b"a"})
    release_in_progress()
    started = time.monotonic()
    submit(as_user("s1"), "c1", "ps1", {"a.txt": b"mine"})
    assert time.monotonic() - started < 5  # did not wait for the release


def test_an_unrelease_waits_for_a_release_in_progress(app, as_user, course, release_in_progress):
    release(as_user("ins"), "c1", "ps1", {"a.txt": b"a"})
    _held, done = release_in_progress()
    finished = threading.Event()

    def unrelease() -> None:
        GQL(app.test_client(), "ins")(
            'mutation { unreleaseAssignment(courseId: "c1", name: "ps1") { name } }'
        )
        finished.set()

    worker = threading.Thread(target=unrelease)
    worker.start()
    assert not finished.wait(1.0)  # blocked behind the release
    done.set()
    worker.join(30)
    assert finished.is_set()
    listed = as_user("ins")('{ course(id: "c1") { assignments { released files { path } } } }')
    assert listed["course"]["assignments"] == [{"released": False, "files": []}]
