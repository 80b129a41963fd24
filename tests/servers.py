"""Real servers for end-to-end tests: gunicorn running the service on loopback."""

from __future__ import annotations

import contextlib
import glob
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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
            "--no-control-socket",  # several instances on one machine must not clash
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


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine (scripts/provision/20-postgres.sh
    installs them)."""


def postgres_bindir() -> str:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    initdb = found[-1] if found else shutil.which("initdb")
    if not initdb:
        raise PostgresUnavailable(
            "PostgreSQL is not installed (no initdb); run scripts/provision/20-postgres.sh"
        )
    return os.path.dirname(os.path.realpath(initdb))


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free loopback port, in a temp dir; yields
    the URL of its ``postgres`` database.  Run as the ``postgres`` OS user when we
    are root (PostgreSQL refuses to run as root); stopped by its PID afterwards."""
    bindir = postgres_bindir()
    root = os.geteuid() == 0
    run_as = {"user": "postgres", "group": "postgres"} if root else {}
    base = tempfile.mkdtemp(prefix="ngshare-pg-")
    if root:
        os.chown(base, pwd.getpwnam("postgres").pw_uid, grp.getgrnam("postgres").gr_gid)
    data, log = os.path.join(base, "data"), os.path.join(base, "server.log")
    port = free_port()
    pid = None
    try:
        subprocess.run(
            [f"{bindir}/initdb", "-D", data, "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--no-locale", "--no-sync"],
            check=True, capture_output=True, cwd=base, **run_as,
        )
        options = (
            f"-h 127.0.0.1 -p {port} -k {base} -c max_connections=300"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        started = subprocess.run(
            [f"{bindir}/pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", "60", "start"],
            capture_output=True, text=True, cwd=base, **run_as,
        )
        pidfile = os.path.join(data, "postmaster.pid")
        with contextlib.suppress(FileNotFoundError), open(pidfile) as f:
            pid = int(f.readline())
        if started.returncode != 0:
            with contextlib.suppress(FileNotFoundError), open(log) as f:
                tail = f.read()[-2000:]
            raise RuntimeError(f"pg_ctl start failed: {started.stderr}\n{tail}")
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)  # "fast" shutdown
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.05)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[-1][:1] != "Z"
    return True


def create_database(server_url: str, name: str) -> str:
    """Create (or empty) database ``name`` on the server of ``server_url``; its URL."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 stand-in on a free loopback port; yields its endpoint URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/moto-api/", proc=proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
