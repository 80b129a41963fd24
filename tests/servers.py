"""Real servers for end-to-end tests: gunicorn running the service on loopback."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import requests

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before {url} answered")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def service_env(tmp_path, **extra: str) -> dict[str, str]:
    """Environment for a dev-identity service with its state under ``tmp_path``."""
    env = dict(os.environ)
    env.update(
        NGSHARE_AUTH="dev",
        NGSHARE_ADMINS="admin",
        NGSHARE_DATABASE_URL=os.environ.get("NGSHARE_TEST_DATABASE_URL")
        or f"sqlite:///{tmp_path}/service.db",
    )
    env.update(extra)
    return env


def flask_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )


@contextlib.contextmanager
def gunicorn_server(
    env: dict[str, str],
    workers: int = 2,
    threads: int = 4,
    log_path: str | None = None,
    port: int | None = None,
    upgrade: bool = True,
) -> Iterator[str]:
    """Run ``gunicorn wsgi:app`` (gthread) on loopback; yields its base URL."""
    if upgrade:
        flask_cli(env, "db", "upgrade")
    port = port or free_port()
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "wsgi:app",
            "--worker-class", "gthread",
            "--workers", str(workers),
            "--threads", str(threads),
            "--bind", f"127.0.0.1:{port}",
            "--timeout", "120",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    prefix = env.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    url = f"http://127.0.0.1:{port}{prefix if prefix.endswith('/') else prefix + '/'}"
    try:
        wait_http(url + "healthz", proc=proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log_path:
            log.close()
