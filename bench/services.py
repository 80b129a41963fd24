"""The servers a benchmark run needs: the stand-in hub, our service, ngshare 0.6.0."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import psutil

from tests.servers import REPO, free_port, gunicorn_server, service_env, stop, wait_http

NGSHARE_VERSION = "0.6.0"
# ngshare 0.6.0 declares no upper bound on SQLAlchemy, but with 2.x it silently stores nothing.
NGSHARE_REQUIREMENTS = [f"ngshare=={NGSHARE_VERSION}", "sqlalchemy<2"]
GB = 1024**3


@dataclass
class Server:
    """A running service: its base URL and the PID at the root of its process tree."""

    url: str
    pid: int


def ngshare_python(venv: str) -> str:
    """Python of a virtual environment with ngshare 0.6.0, created on first use."""
    python = os.path.join(venv, "bin", "python")
    stamp = os.path.join(venv, ".installed-" + "-".join(NGSHARE_REQUIREMENTS).replace("<", "lt"))
    if not os.path.exists(stamp):
        subprocess.run([sys.executable, "-m", "venv", "--clear", venv], check=True)
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             *NGSHARE_REQUIREMENTS],
            check=True,
        )
        open(stamp, "w").close()
    return python


@contextlib.contextmanager
def stand_in_hub(tokens: dict[str, dict], workdir: str) -> Iterator[str]:
    """A FakeHub in its own process; yields the ``JUPYTERHUB_API_URL`` to give services."""
    path = os.path.join(workdir, "hub-tokens.json")
    with open(path, "w") as f:
        json.dump(tokens, f)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.hub", str(port), path], cwd=REPO, stdout=subprocess.PIPE
    )
    try:
        if proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("the stand-in hub did not start")
        yield f"http://127.0.0.1:{port}/hub/api"
    finally:
        stop(proc)


@contextlib.contextmanager
def ours(
    hub_api_url: str, workdir: str, blob_store: str, max_file_size: int,
    workers: int = 2, threads: int = 4,
) -> Iterator[Server]:
    """Our service under gunicorn (gthread), identity through the hub."""
    state = os.path.join(workdir, "ours")
    os.makedirs(state, exist_ok=True)
    env = service_env(
        state,
        NGSHARE_AUTH="hub",
        JUPYTERHUB_API_URL=hub_api_url,
        NGSHARE_BLOB_STORE=blob_store,
        NGSHARE_BLOB_DIR=os.path.join(state, "blobs"),
        NGSHARE_MAX_FILE_SIZE=str(max_file_size),
        NGSHARE_MAX_UPLOAD_SIZE=str(max_file_size),
    )
    port = free_port()
    log = os.path.join(workdir, "ours.log")
    with gunicorn_server(env, workers=workers, threads=threads, port=port, log_path=log) as url:
        yield Server(url, _child_with(f"127.0.0.1:{port}"))


@contextlib.contextmanager
def ngshare(python: str, hub_api_url: str, workdir: str) -> Iterator[Server]:
    """ngshare 0.6.0 as a JupyterHub service (its own ``main``), on loopback."""
    state = os.path.join(workdir, "ngshare")
    os.makedirs(state, exist_ok=True)
    port = free_port()
    prefix = "/services/ngshare/"
    env = dict(
        os.environ,
        JUPYTERHUB_API_URL=hub_api_url,
        JUPYTERHUB_API_TOKEN="bench-service-token",
        JUPYTERHUB_CLIENT_ID="service-ngshare",
        JUPYTERHUB_SERVICE_PREFIX=prefix,
        JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{port}",
    )
    env.pop("PYTHONPATH", None)
    with open(os.path.join(workdir, "ngshare.log"), "ab") as log:
        proc = subprocess.Popen(
            [
                python, os.path.join(REPO, "bench", "ngshare_launch.py"),
                "--database", f"sqlite:///{state}/ngshare.db",
                "--storage", os.path.join(state, "files") + "/",
                "--admins", "admin",
            ],
            cwd=state, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60, proc=proc)
        yield Server(f"http://127.0.0.1:{port}{prefix}", proc.pid)
    finally:
        stop(proc)


def _child_with(marker: str) -> int:
    """The PID of our direct child process whose command line mentions ``marker``."""
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if any(marker in part for part in child.cmdline()):
                return child.pid
    raise RuntimeError(f"no child process with {marker!r} in its command line")


