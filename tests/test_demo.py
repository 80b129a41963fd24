"""The README's first command, ``bash scripts/demo.sh``, run as a user runs it: it sets
up, migrates, seeds the demo course and serves on the deployed gunicorn settings; Ctrl-C
stops it, and running it again finds everything in place."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
import requests

from ngshare_gql.client import Client
from tests.servers import REPO, free_port, wait_http

pytestmark = pytest.mark.slow


def start_demo(tmp_path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NGSHARE_", "JUPYTERHUB_"))}
    # The demo's own database, not the checkout's instance/ (the rest is its defaults).
    env.update(PORT=str(port), NGSHARE_DATABASE_URL=f"sqlite:///{tmp_path}/demo.db")
    log = open(tmp_path / "demo.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        ["bash", "scripts/demo.sh"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a terminal gives it
    )


def ctrl_c(proc: subprocess.Popen) -> int:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.wait(timeout=15)  # gunicorn waits 30 s for a worker that hangs
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_demo_serves_the_seeded_course_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    for attempt in ("first", "again"):
        proc = start_demo(tmp_path, port)
        try:
            wait_http(url + "healthz", timeout=120, proc=proc)
            roster = Client(url, "instructor").execute(
                '{ course(id: "demo") { title roster { user role } } }'
            )["course"]
            assert roster["title"] == "Demo course", attempt
            assert sorted((m["user"], m["role"]) for m in roster["roster"]) == [
                ("instructor", "INSTRUCTOR"), ("student1", "STUDENT"), ("student2", "STUDENT")
            ]
            me = Client(url, "student1").execute("{ me { roles { courseId roles } } }")
            assert me["me"]["roles"] == [{"courseId": "demo", "roles": ["STUDENT"]}]
            page = requests.get(url + "graphql", headers={"Accept": "text/html"}, timeout=10)
            assert page.status_code == 200 and "graphiql" in page.text.lower()
        finally:
            code = ctrl_c(proc)
        assert code == 0, (tmp_path / "demo.log").read_text()[-3000:]
    log = (tmp_path / "demo.log").read_text()
    assert log.count("ngshare-gql demo is starting") == 2 and "DEV IDENTITY" in log
