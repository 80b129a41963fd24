"""Load: many students submitting at once against gunicorn, for a while.

Every student submits again and again (a fresh file each time) until the time is
up.  Zero errors are allowed; afterwards every submission must be listed with the
sha256 it was sent with, and every file must download with those bytes.

``NGSHARE_LOAD_STUDENTS`` (200) and ``NGSHARE_LOAD_SECONDS`` (CI: 10; the figures
in the report come from 60) size the run; ``NGSHARE_LOAD_DATABASE=postgresql``
runs it on PostgreSQL instead of the embedded SQLite.  p50/p99 latency is printed.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from ngshare_gql.client import Client, ClientError, LocalFile
from tests.servers import create_course, create_database, gunicorn_server, service_env

pytestmark = pytest.mark.slow

STUDENTS = int(os.environ.get("NGSHARE_LOAD_STUDENTS", "200"))
SECONDS = float(os.environ.get("NGSHARE_LOAD_SECONDS", "10"))
DATABASE = os.environ.get("NGSHARE_LOAD_DATABASE", "sqlite")

SUBMIT = (
    'mutation($f: [FileInput!]!, $ts: String) { submitAssignment(courseId: "c1", '
    'assignment: "ps1", files: $f, timestamp: $ts) { id files { sha256 } } }'
)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


@pytest.fixture
def database_env(tmp_path, request) -> dict[str, str]:
    if DATABASE == "postgresql":
        server = request.getfixturevalue("postgres_server")
        return {"NGSHARE_DATABASE_URL": create_database(server, "ngshare_load")}
    return {}


def test_students_submitting_concurrently(tmp_path, database_env):
    env = service_env(tmp_path, **database_env)
    students = [f"student{i:03d}" for i in range(STUDENTS)]
    with gunicorn_server(env, workers=2, threads=16) as url:
        admin = Client(url, "admin")
        create_course(admin, "c1", ["ins"], students)
        notebook = tmp_path / "ps1.ipynb"
        notebook.write_bytes(b'{"cells": []}')
        local = LocalFile.scan("ps1.ipynb", str(notebook))
        Client(url, "ins").execute_with_files(
            'mutation($f: [FileInput!]!) { releaseAssignment(courseId: "c1", name: "ps1", '
            "files: $f) { name } }", {"f": [local.as_input()]}, {"f.0.content": local})

        sent: dict[tuple[str, str], str] = {}  # (student, timestamp) -> sha256
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        start = threading.Barrier(STUDENTS)
        folder = tmp_path / "work"
        folder.mkdir()

        def student(name: str) -> None:
            client = Client(url, name, timeout=120)
            start.wait()
            deadline = time.monotonic() + SECONDS
            n = 0
            while time.monotonic() < deadline:
                n += 1
                content = f"{name} submission {n} ".encode() * 50 + os.urandom(64)
                path = folder / f"{name}-{n}.ipynb"
                path.write_bytes(content)
                upload = LocalFile.scan("ps1.ipynb", str(path))
                timestamp = f"{name}-{n}"
                began = time.monotonic()
                try:
                    got = client.execute_with_files(
                        SUBMIT, {"f": [upload.as_input()], "ts": timestamp},
                        {"f.0.content": upload},
                    )["submitAssignment"]
                except ClientError as exc:
                    with lock:
                        errors.append(f"{name} #{n}: {exc.code} {exc.message}")
                    continue
                finally:
                    path.unlink()
                took = time.monotonic() - began
                with lock:
                    latencies.append(took)
                    sent[(name, timestamp)] = upload.sha256
                if got["files"][0]["sha256"] != upload.sha256:
                    with lock:
                        errors.append(f"{name} #{n}: stored with another sha256")

        threads = [threading.Thread(target=student, args=(s,)) for s in students]
        began = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - began
        assert not errors, f"{len(errors)} errors, first: {errors[:5]}"

        # Every submission is stored, with the bytes it was sent with.
        listed = Client(url, "ins", timeout=300).execute(
            '{ course(id: "c1") { assignment(name: "ps1") { submissions '
            "{ student timestamp files { sha256 url } } } } }"
        )["course"]["assignment"]["submissions"]
        stored = {(s["student"], s["timestamp"]): s["files"][0] for s in listed}
        assert set(stored) == set(sent)
        verifier = Client(url, "ins", timeout=120)
        verifier.session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=8))

        def downloaded(file: dict) -> str:
            response = verifier.session.get(url.rstrip("/") + file["url"], timeout=60)
            assert response.status_code == 200
            return hashlib.sha256(response.content).hexdigest()

        with ThreadPoolExecutor(8) as pool:
            hashes = dict(zip(stored, pool.map(downloaded, stored.values()), strict=True))
        for key, file in stored.items():
            assert file["sha256"] == hashes[key] == sent[key]

    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(
        f"\nload ({DATABASE}): {STUDENTS} students x {SECONDS:.0f} s: {len(sent)} submissions "
        f"in {wall:.1f} s ({len(sent) / wall:.1f}/s), 0 errors; latency p50 {p50 * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms, "
        f"mean {statistics.mean(latencies) * 1000:.0f} ms; all {len(stored)} verified by download"
    )
    assert len(sent) >= STUDENTS  # everyone got at least one submission through
