"""Several instances at once: two gunicorn instances on one PostgreSQL database and
one S3 bucket, driven concurrently; nothing is lost, duplicated, mixed or corrupted,
and garbage collection running meanwhile never removes a content in use."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from ngshare_gql import config, create_app
from ngshare_gql.client import Client, ClientError, LocalFile
from ngshare_gql.extensions import db
from ngshare_gql.models import Blob, File, Submission
from ngshare_gql.storage.gc import collect_garbage
from tests.servers import create_database, flask_cli, gunicorn_server, service_env
from tests.test_s3 import new_bucket, s3_client

pytestmark = pytest.mark.slow

STUDENTS = [f"s{i:03d}" for i in range(100)]
WORKERS = 8  # concurrent clients: bounded, the machine has 2 cores

RELEASE = """mutation($c: String!, $n: String!, $files: [FileInput!]!, $force: Boolean!) {
  releaseAssignment(courseId: $c, name: $n, files: $files, force: $force) { name } }"""
FETCH = """mutation($c: String!, $n: String!) {
  fetchAssignment(courseId: $c, name: $n) { files { path sha256 size url } } }"""
SUBMIT = """mutation($c: String!, $a: String!, $files: [FileInput!]!) {
  submitAssignment(courseId: $c, assignment: $a, files: $files) { id } }"""
COLLECT = """mutation($c: String!, $a: String!) {
  collectSubmissions(courseId: $c, assignment: $a, filter: {uncollected: true}) {
    id student files { path sha256 size url } } }"""


class Cluster:
    """Two instances (``a`` streams downloads, ``b`` redirects to presigned URLs)
    sharing one database and one bucket."""

    def __init__(self, env: dict[str, str], a: str, b: str, workdir: Path) -> None:
        self.env, self.a, self.b, self.workdir = env, a, b, workdir
        self.settings = config.from_environ(env)
        self.app = create_app(self.settings)

    def client(self, user: str, i: int) -> Client:
        return Client(self.a if i % 2 == 0 else self.b, user, timeout=120)

    def local(self, user: str, path: str, content: bytes) -> LocalFile:
        target = self.workdir / user / f"{time.monotonic_ns()}" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        return LocalFile.scan(path, str(target))

    def objects(self) -> dict[str, int]:
        """What the bucket holds: sha256 -> size."""
        s3 = s3_client(self.settings.s3_endpoint_url)
        found = {}
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.settings.s3_bucket, Prefix=self.settings.s3_prefix
        ):
            for obj in page.get("Contents", []):
                found[obj["Key"][len(self.settings.s3_prefix) :]] = obj["Size"]
        return found

    def check_store(self) -> None:
        """Every file's content is indexed and in the bucket with its size; the bucket
        holds nothing the index does not know."""
        objects = self.objects()
        with self.app.app_context():
            blobs = dict(db.session.execute(sa.select(Blob.sha256, Blob.size)).tuples().all())
            files = db.session.execute(sa.select(File.sha256, File.size)).tuples().all()
            db.session.remove()
        assert objects == blobs
        for sha256, size in files:
            assert blobs.get(sha256) == size, f"file content {sha256} is not stored"


@pytest.fixture(scope="module")
def cluster(postgres_server, s3_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scale")
    env = service_env(
        tmp,
        NGSHARE_DATABASE_URL=create_database(postgres_server, "ngshare_scale"),
        NGSHARE_BLOB_STORE="s3",
        NGSHARE_S3_BUCKET=new_bucket(s3_server),
        NGSHARE_S3_ENDPOINT_URL=s3_server,
        NGSHARE_S3_REGION="us-east-1",
        NGSHARE_S3_ACCESS_KEY_ID="testing",
        NGSHARE_S3_SECRET_ACCESS_KEY="testing",
        NGSHARE_SECRET_KEY="one key for every instance",
    )
    flask_cli(env, "db", "upgrade")  # the migrations, on an empty PostgreSQL database
    flask_cli(env, "course", "add", "big", "--instructor", "ins",
              *[arg for s in STUDENTS for arg in ("--student", s)])
    with contextlib.ExitStack() as stack:
        a = stack.enter_context(gunicorn_server(env, log_path=str(tmp / "a.log"), upgrade=False))
        b = stack.enter_context(
            gunicorn_server(
                {**env, "NGSHARE_S3_PRESIGN_DOWNLOADS": "true"},
                log_path=str(tmp / "b.log"),
                upgrade=False,
            )
        )
        cluster = Cluster(env, a, b, tmp)
        yield cluster
        with cluster.app.app_context():
            db.engine.dispose()


def release(client: Client, cluster: Cluster, name: str, files: dict[str, bytes], force=False):
    local = [cluster.local("ins", path, content) for path, content in files.items()]
    variables = {"c": "big", "n": name, "files": [f.as_input() for f in local], "force": force}
    uploads = {f"files.{i}.content": f for i, f in enumerate(local)}
    return client.execute_with_files(RELEASE, variables, uploads)


def submit(
    client: Client, cluster: Cluster, user: str, name: str, files: dict[str, bytes], all_=False
):
    """Submit as the real client does: send only the contents the server lacks."""
    local = [cluster.local(user, path, content) for path, content in files.items()]
    lacking = {f.sha256 for f in local} if all_ else client.upload_plan("big", local)
    variables = {"c": "big", "a": name, "files": [f.as_input() for f in local]}
    uploads = {f"files.{i}.content": f for i, f in enumerate(local) if f.sha256 in lacking}
    return client.execute_with_files(SUBMIT, variables, uploads)


def fetch(client: Client, cluster: Cluster, user: str, name: str) -> dict[str, bytes]:
    files = client.execute(FETCH, {"c": "big", "n": name})["fetchAssignment"]["files"]
    got = {}
    for f in files:
        dest = cluster.workdir / user / "fetched" / name / f["path"]
        client.download(f["url"], str(dest), f["sha256"], f["size"])  # verifies the sha256
        got[f["path"]] = dest.read_bytes()
    return got


def test_100_students_on_two_instances_while_the_instructor_collects(cluster):
    data = os.urandom(200_000)
    released = {"ps1.ipynb": b'{"cells": [], "nbformat": 4}', "data.csv": data}
    release(Client(cluster.a, "ins"), cluster, "ps1", released)
    expected: dict[str, dict[str, bytes]] = {}

    def student(i: int) -> None:
        user = STUDENTS[i]
        client = cluster.client(user, i)
        got = fetch(client, cluster, user, "ps1")
        assert got == released
        answer = {
            "ps1.ipynb": got["ps1.ipynb"] + f" answer of {user}".encode(),
            "data.csv": got["data.csv"],  # unchanged: reused, not sent again
            "extra/notes.txt": b"shared text every student adds",
        }
        submit(client, cluster, user, "ps1", answer)
        expected[user] = answer

    collected: list[dict] = []
    done = threading.Event()

    def instructor() -> None:  # collects through the instance students use less
        client = Client(cluster.b, "ins", timeout=120)
        while True:
            last = done.is_set()  # one more round after the students are done
            batch = client.execute(COLLECT, {"c": "big", "a": "ps1"})["collectSubmissions"]
            collected.extend(batch)
            if last:
                return
            time.sleep(0.2)

    started = time.monotonic()
    collector = threading.Thread(target=instructor)
    collector.start()
    try:
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(student, range(len(STUDENTS))))
    finally:
        done.set()
        collector.join(120)
    elapsed = time.monotonic() - started
    print(f"100 students fetched and submitted through 2 instances in {elapsed:.1f} s")

    students = [c["student"] for c in collected]
    assert sorted(students) == STUDENTS  # every submission collected exactly once
    assert len({c["id"] for c in collected}) == len(STUDENTS)
    instructor = {0: Client(cluster.a, "ins"), 1: Client(cluster.b, "ins")}
    for n, sub in enumerate(collected):
        assert {f["path"]: f["sha256"] for f in sub["files"]} == {
            path: hashlib.sha256(content).hexdigest()
            for path, content in expected[sub["student"]].items()
        }
        for f in sub["files"]:
            dest = cluster.workdir / "collected" / sub["student"] / f["path"]
            instructor[n % 2].download(f["url"], str(dest), f["sha256"], f["size"])
    with cluster.app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Submission)) == 100
        db.session.remove()
    # The released data and the shared notes are stored once however many submitted them.
    objects = cluster.objects()
    assert hashlib.sha256(data).hexdigest() in objects
    assert len(objects) == 2 + 100 + 1
    cluster.check_store()


def test_concurrent_forced_releases_leave_one_complete_release(cluster):
    versions = {
        tag: {f"{tag}/file{k}.txt": f"{tag} {k} {os.urandom(8).hex()}".encode() for k in range(6)}
        for tag in ("x", "y")
    }
    for round_ in range(8):
        name = f"race{round_}"  # the first call of a round also creates the assignment
        barrier = threading.Barrier(2)

        def go(tag: str, i: int, name=name, barrier=barrier) -> None:
            client = cluster.client("ins", i)
            barrier.wait(10)
            release(client, cluster, name, versions[tag], force=True)

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(go, ("x", "y"), (0, 1)))
        student = cluster.client(STUDENTS[0], round_)
        got = fetch(student, cluster, STUDENTS[0], name)
        assert got in (versions["x"], versions["y"]), sorted(got)
    cluster.check_store()


def test_the_same_new_file_from_20_students_at_once_is_stored_once(cluster):
    release(Client(cluster.a, "ins"), cluster, "same", {"q.txt": b"question"})
    content = os.urandom(300_000)
    digest = hashlib.sha256(content).hexdigest()
    assert digest not in cluster.objects()
    barrier = threading.Barrier(20)

    def student(i: int) -> None:
        client = cluster.client(STUDENTS[i], i)
        barrier.wait(30)
        submit(client, cluster, STUDENTS[i], "same", {"copied.bin": content})

    with ThreadPoolExecutor(20) as pool:
        list(pool.map(student, range(20)))
    with cluster.app.app_context():
        refs = db.session.scalar(
            sa.select(sa.func.count()).select_from(File).where(File.sha256 == digest)
        )
        rows = db.session.scalar(
            sa.select(sa.func.count()).select_from(Blob).where(Blob.sha256 == digest)
        )
        db.session.remove()
    assert (refs, rows) == (20, 1)
    assert cluster.objects()[digest] == len(content)
    cluster.check_store()


def test_garbage_collection_during_uploads_and_reuse_never_loses_content(cluster):
    """Rounds of: release, students submitting (reusing the released content without
    sending it, and their own new content), the instructor unreleasing in the middle,
    while a collector loops on another connection.  Reuse may be refused (the content
    went away: the client then sends it) but nothing stored may lose its bytes."""
    stop = threading.Event()
    removed: list[str] = []
    passes = [0]

    def collector() -> None:
        with cluster.app.app_context():
            while not stop.is_set():
                removed.extend(collect_garbage(cluster.app.extensions["ngshare"].blobs))
                db.session.remove()
                passes[0] += 1
        with cluster.app.app_context():
            db.session.remove()

    gc_thread = threading.Thread(target=collector)
    gc_thread.start()
    outcomes = {"reused": 0, "resent": 0, "unreleased": 0}
    lock = threading.Lock()
    try:
        for round_ in range(6):
            name = f"gc{round_}"
            common = f"round {round_} starter {os.urandom(8).hex()}".encode() * 100
            hint = f"round {round_} hint, released only".encode()
            release(
                Client(cluster.a, "ins"), cluster, name, {"starter.py": common, "hint.txt": hint}
            )

            def student(i: int, name=name, common=common) -> None:
                user = STUDENTS[i]
                client = cluster.client(user, i + 1)
                own = {"starter.py": common, "mine.py": f"{user} {name}".encode()}
                outcome = "reused"
                try:
                    try:
                        submit(client, cluster, user, name, own)
                    except ClientError as exc:
                        if exc.code != "BAD_USER_INPUT":
                            raise
                        # The content went away between plan and submit: send it all.
                        outcome = "resent"
                        submit(client, cluster, user, name, own, all_=True)
                except ClientError as exc:
                    assert exc.code == "NOT_FOUND", exc.message  # unreleased meanwhile
                    outcome = "unreleased"
                with lock:
                    outcomes[outcome] += 1

            def unrelease(name=name) -> None:
                time.sleep(random.uniform(0.05, 0.4))
                Client(cluster.b, "ins").execute(
                    'mutation($n: String!) { unreleaseAssignment(courseId: "big", name: $n)'
                    " { released } }",
                    {"n": name},
                )

            with ThreadPoolExecutor(WORKERS) as pool:
                jobs = [pool.submit(student, i) for i in range(12)]
                jobs.append(pool.submit(unrelease))
                for job in jobs:
                    job.result()
    finally:
        stop.set()
        gc_thread.join(60)
    # Unreleasing removes the released-only contents itself; whatever the collector
    # got to first is counted here.
    print(f"{passes[0]} gc passes removed {len(removed)} blobs; submissions: {outcomes}")
    assert passes[0] >= 3, "the collector did not run alongside"
    cluster.check_store()
    # Every stored submission downloads with its sha256 through either instance.
    with cluster.app.app_context():
        rows = db.session.execute(
            sa.select(File.id, File.sha256, File.size, File.path).where(
                File.submission_id.is_not(None)
            )
        ).all()
        db.session.remove()
    ins = {0: Client(cluster.a, "ins"), 1: Client(cluster.b, "ins")}
    for n, (file_id, sha256, size, path) in enumerate(rows):
        dest = cluster.workdir / "verify" / str(file_id) / path
        ins[n % 2].download(f"files/{file_id}", str(dest), sha256, size)
    # Finally the operator's command, on PostgreSQL + S3, leaves only what is used.
    result = flask_cli(cluster.env, "blobs", "gc")
    assert "unreferenced blobs" in result.stdout
    with cluster.app.app_context():
        unused = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Blob)
            .where(~sa.exists().where(File.sha256 == Blob.sha256))
        )
        db.session.remove()
    assert unused == 0
    cluster.check_store()
