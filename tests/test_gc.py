"""Garbage collection: contents nobody uses are removed, on SQLite and PostgreSQL,
with the ``sql`` and ``s3`` stores; never a content in use or being stored."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from ngshare_gql.config import Settings
from ngshare_gql.extensions import db
from ngshare_gql.models import Blob, File
from ngshare_gql.storage.gc import collect_garbage, collect_orphans
from ngshare_gql.storage.staging import StagedFile
from tests.conftest import release, sha, submit
from tests.test_s3 import download, indexed, new_bucket, s3_settings, stored


@pytest.fixture(params=["sql", "s3"])
def settings(request, db_url) -> Settings:
    """Every test here runs with both stores (and, through ``db_url``, both databases)."""
    if request.param == "sql":
        return Settings(database_url=db_url, auth="dev", admins=("admin",), blob_store="sql")
    endpoint = request.getfixturevalue("s3_server")
    return s3_settings(db_url, endpoint, new_bucket(endpoint))


FB = """mutation($f: [FeedbackInput!]!) { releaseFeedback(courseId: "c1", assignment: "ps1",
  feedback: $f) { notebook files { url } } }"""


def feedback(ins, html: bytes):
    return ins(
        FB,
        {"f": [{"student": "s1", "notebook": "nb", "files": [
            {"path": "nb.html", "sha256": sha(html), "size": len(html)}]}]},
        {"f.0.files.0.content": html},
    )["releaseFeedback"]


def test_unrelease_and_force_release_remove_contents_no_one_uses(app, as_user, course):
    ins, s1 = as_user("ins"), as_user("s1")
    shared, only_released, replaced = b"shared by a submission", b"released only", b"old version"
    release(ins, "c1", "ps1", {"a": shared, "b": only_released, "c": replaced})
    sub = submit(s1, "c1", "ps1", {"a": shared})
    release(ins, "c1", "ps1", {"a": shared, "b": only_released, "c": b"new version"}, force=True)
    assert sha(replaced) not in indexed(app) | stored(app)
    ins('mutation { unreleaseAssignment(courseId: "c1", name: "ps1") { released } }')
    assert indexed(app) == stored(app) == {sha(shared)}
    assert download(app, sub["files"][0]["url"], "s1") == shared


def test_feedback_replacement_and_removal_remove_old_feedback(app, as_user, course):
    ins, s1 = as_user("ins"), as_user("s1")
    release(ins, "c1", "ps1", {"nb.ipynb": b"{}"})
    submit(s1, "c1", "ps1", {"nb.ipynb": b'{"x": 1}'})
    feedback(ins, b"<p>first</p>")
    assert sha(b"<p>first</p>") in stored(app)
    (fb,) = feedback(ins, b"<p>second</p>")
    assert sha(b"<p>first</p>") not in indexed(app) | stored(app)
    assert download(app, fb["files"][0]["url"], "s1") == b"<p>second</p>"
    removed = ins('mutation { removeFeedback(courseId: "c1", assignment: "ps1") }')
    assert removed["removeFeedback"] == 1
    assert sha(b"<p>second</p>") not in indexed(app) | stored(app)


def test_course_deletion_removes_its_contents_but_not_another_courses(app, as_user, course):
    ins, ins2, admin = as_user("ins"), as_user("ins2"), as_user("admin")
    release(ins, "c1", "ps1", {"common.txt": b"both courses", "own.txt": b"c1 only"})
    submit(as_user("s1"), "c1", "ps1", {"work.txt": b"s1 work"})
    other = release(ins2, "d1", "ps1", {"common.txt": b"both courses"})
    admin('mutation { deleteCourse(id: "c1") }')
    assert indexed(app) == stored(app) == {sha(b"both courses")}
    assert download(app, other["files"][0]["url"], "t1") == b"both courses"


def test_removing_submissions_removes_their_contents(app, as_user, course):
    ins = as_user("ins")
    release(ins, "c1", "ps1", {"a.txt": b"released"})
    submit(as_user("s1"), "c1", "ps1", {"a.txt": b"released", "mine.txt": b"s1 only"})
    ins('mutation { removeSubmissions(courseId: "c1", assignment: "ps1", student: "s1") }')
    assert indexed(app) == stored(app) == {sha(b"released")}


def leftover(app, content: bytes) -> str:
    """A stored blob nothing references (as a crashed request could leave)."""
    services = app.extensions["ngshare"]
    with app.app_context():
        staged = StagedFile(services.staging_dir, 10**6)
        staged.write(content)
        services.blobs.put(staged)
        db.session.commit()
        staged.discard()
    return sha(content)


def test_gc_command_removes_unreferenced_blobs_after_their_minimum_age(app, as_user, course):
    release(as_user("ins"), "c1", "ps1", {"kept.txt": b"kept"})
    orphan = leftover(app, b"nobody uses me")
    runner = app.test_cli_runner()
    young = runner.invoke(args=["blobs", "gc", "--min-age", "3600"])
    assert young.exit_code == 0 and "removed 0 " in young.output
    assert orphan in indexed(app) and orphan in stored(app)
    result = runner.invoke(args=["blobs", "gc"])
    assert result.exit_code == 0 and "removed 1 unreferenced blobs" in result.output
    assert indexed(app) == stored(app) == {sha(b"kept")}


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite: one writer
def test_gc_skips_a_blob_an_unfinished_transaction_is_using(app, as_user, course):
    """A transaction that locked a blob to reference it (an upload or a reuse still
    running) keeps it: the collector skips it and removes it only once it is free."""
    orphan = leftover(app, b"about to be reused")
    store = app.extensions["ngshare"].blobs
    locked, release_lock = threading.Event(), threading.Event()

    def holder():
        with app.app_context():
            assert store.lock({orphan}) == {orphan}
            locked.set()
            release_lock.wait(30)
            db.session.rollback()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert locked.wait(30)
        with app.app_context():
            assert collect_garbage(store) == []
            assert db.session.get(Blob, orphan) is not None
    finally:
        release_lock.set()
        thread.join(30)
    with app.app_context():
        assert collect_garbage(store) == [orphan]
        assert db.session.scalar(sa.select(sa.func.count()).select_from(File)) == 0
    assert orphan not in stored(app)


def test_gc_command_removes_bytes_whose_upload_never_committed(app, settings):
    """An upload writes the bytes, then its transaction fails: the ``sql`` store loses
    them with the transaction, the others keep bytes no row knows, until ``blobs gc``."""
    services = app.extensions["ngshare"]
    with app.app_context():
        staged = StagedFile(services.staging_dir, 10**6)
        staged.write(b"the request failed after storing this")
        services.blobs.put(staged)
        db.session.rollback()
        staged.discard()
    lost = stored(app) - indexed(app)
    content = b"the request failed after storing this"
    assert lost == (set() if settings.blob_store == "sql" else {sha(content)})
    runner = app.test_cli_runner()
    young = runner.invoke(args=["blobs", "gc", "--min-age", "3600"])
    assert young.exit_code == 0 and "removed 0 stored contents" in young.output
    assert stored(app) - indexed(app) == lost
    result = runner.invoke(args=["blobs", "gc"])
    assert f"removed {len(lost)} stored contents with no index entry" in result.output
    assert stored(app) == indexed(app) == set()


@pytest.mark.parametrize("settings", ["s3"], indirect=True)
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_orphan_sweep_leaves_an_upload_in_flight_alone(app):
    """Bytes written by an upload whose transaction is still open have no committed
    row yet; the sweep's claim on them waits for that upload and then gives way."""
    services = app.extensions["ngshare"]
    content = b"being uploaded right now"
    written, commit = threading.Event(), threading.Event()

    def upload() -> None:
        with app.app_context():
            staged = StagedFile(services.staging_dir, 10**6)
            staged.write(content)
            services.blobs.put(staged)
            written.set()
            commit.wait(30)
            db.session.commit()
            staged.discard()

    uploader = threading.Thread(target=upload)
    uploader.start()
    swept: list[list[str]] = []

    def sweep() -> None:
        with app.app_context():
            swept.append(collect_orphans(services.blobs))

    assert written.wait(30)
    assert sha(content) in stored(app) - indexed(app)  # looks like an orphan from outside
    sweeper = threading.Thread(target=sweep)
    sweeper.start()
    sweeper.join(1.0)
    assert sweeper.is_alive()  # waiting for the upload's row
    commit.set()
    uploader.join(30)
    sweeper.join(30)
    assert swept == [[]]
    assert sha(content) in stored(app) & indexed(app)
