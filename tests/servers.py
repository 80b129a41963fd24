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
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator

import requests

from ngshare_gql.client import Client

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


COURSE_SETUP = """mutation($c: String!, $i: [MemberInput!]!, $s: [MemberInput!]!) {
  createCourse(id: $c) { id }
  instructors: addMembers(courseId: $c, role: INSTRUCTOR, members: $i) { user }
  students: addMembers(courseId: $c, role: STUDENT, members: $s) { user }
}"""


def create_course(
    admin: Client, course_id: str, instructors: Iterable[str] = (), students: Iterable[str] = ()
) -> None:
    """Create a course with its roster in one request, as an admin of a running service."""
    admin.execute(
        COURSE_SETUP,
        {
            "c": course_id,
            "i": [{"user": u} for u in instructors],
            "s": [{"user": u} for u in students],
        },
    )


def stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    """Terminate a server we started, and kill it if it does not go in ``timeout`` s."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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


@contextlib.contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[socketserver.BaseServer]:
    """A small in-process test server answering from a thread until the block ends."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


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
    """Run ``gunicorn wsgi:app`` (gthread, deploy/gunicorn.conf.py) on loopback; yields
    its base URL."""
    if upgrade:
        flask_cli(env, "db", "upgrade")
    port = port or free_port()
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "wsgi:app",
            # As deployed: gthread, a 120 s timeout, no control socket (several
            # instances on one machine must not clash), startup objects frozen.
            "--config", os.path.join(REPO, "deploy", "gunicorn.conf.py"),
            "--workers", str(workers),
            "--threads", str(threads),
            "--bind", f"127.0.0.1:{port}",
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
        stop(proc)
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
        stop(proc)


class Hub:
    """A running JupyterHub: its public URL, our service's URL through its proxy and on
    the service's own port, and an admin API session (a test-only service)."""

    def __init__(
        self, url: str, admin_token: str, service_name: str, log_path: str, service_port: int
    ) -> None:
        self.url = url
        self.service_name = service_name
        self.service_url = f"{url}services/{service_name}/"
        self.direct_service_url = f"http://127.0.0.1:{service_port}/services/{service_name}/"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"token {admin_token}"

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        """The hub's REST API as its admin; fails loudly on any error status."""
        response = self.api.request(method, self.url + "hub/api/" + path, timeout=30, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {response.status_code} {response.text}")
        return response

    def user(self, name: str, groups: tuple[str, ...] = ()) -> None:
        """Create user ``name`` (``hubadmin`` exists already, as a hub admin) in ``groups``."""
        if self.api.get(self.url + f"hub/api/users/{name}", timeout=30).status_code == 404:
            self.call("POST", f"users/{name}")
        for group in groups:
            if self.api.get(self.url + f"hub/api/groups/{group}", timeout=30).status_code == 404:
                self.call("POST", f"groups/{group}")
            self.call("POST", f"groups/{group}/users", json={"users": [name]})

    def token(self, user: str, scopes: list[str] | None = None) -> tuple[str, str]:
        """A new API token of ``user`` (by default with access to our service); (token, id)."""
        if scopes is None:
            scopes = [f"access:services!service={self.service_name}"]
        model = self.call(
            "POST", f"users/{user}/tokens", json={"scopes": scopes, "note": "pytest"}
        ).json()
        return model["token"], model["id"]

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()


def _answers_200(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


@contextlib.contextmanager
def jupyterhub_server(
    workdir: str, service_env: dict[str, str], spawner_cmd: list[str] | None = None
) -> Iterator[Hub]:
    """A real JupyterHub on loopback running our service as a hub-managed service.

    Loads ``deploy/jupyterhub_config.py`` (the operators' example: service under gunicorn
    gthread, roles, server_token_scopes) and adds what a test needs: free ports, the
    dummy authenticator, the simple local spawner, a test admin token.  Stopped by PID,
    with every process it started.
    """
    import psutil

    chp = os.path.join(REPO, "node_modules", ".bin", "configurable-http-proxy")
    if not os.path.exists(chp):
        raise RuntimeError(f"{chp} missing: run scripts/provision/30-jupyterhub.sh")
    os.makedirs(os.path.join(workdir, "home"), exist_ok=True)
    port, hub_port, proxy_api_port, service_port = (free_port() for _ in range(4))
    admin_token = os.urandom(16).hex()
    service_name = "ngshare-gql"
    # The test's own service and role come first: the deploy config must keep them.
    config = f"""
import sys
c = get_config()
c.JupyterHub.services = [{{"name": "pytest", "api_token": {admin_token!r}}}]
c.JupyterHub.load_roles = [{{
    "name": "pytest-admin",
    "services": ["pytest"],
    "scopes": ["admin:users", "admin:groups", "tokens", "admin:servers", "read:users",
               "access:services"],
}}]
load_subconfig({os.path.join(REPO, "deploy", "jupyterhub_config.py")!r})
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.JupyterHub.db_url = "sqlite:///{workdir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{workdir}/cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{"hubadmin"}}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "{workdir}/home/{{username}}"
c.Spawner.cmd = {spawner_cmd or [sys.executable, "-m", "jupyterhub.singleuser"]!r}
c.Spawner.environment = {{"NGSHARE_URL": "http://127.0.0.1:{port}/services/{service_name}/"}}
c.Spawner.start_timeout = 90
c.Spawner.http_timeout = 90
"""
    config_path = os.path.join(workdir, "jupyterhub_config.py")
    with open(config_path, "w") as f:
        f.write(config)
    log_path = os.path.join(workdir, "hub.log")
    # The service's settings reach it as an operator's would: from the hub's environment.
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NGSHARE_")},
        **service_env,
        "NGSHARE_PORT": str(service_port),
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
    }
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", config_path],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    hub = Hub(f"http://127.0.0.1:{port}/", admin_token, service_name, log_path, service_port)
    hub.process = proc
    started: set[int] = set()

    def children() -> set[int]:
        try:
            return {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            return set()

    try:
        # The proxy answers 404/503 until the hub has added its routes: wait for a 200.
        for url in (hub.url + "hub/api/", hub.service_url + "healthz"):
            deadline = time.monotonic() + 90
            while not _answers_200(url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterHub did not serve {url}; see {log_path}")
                time.sleep(0.2)
        started = children()  # the proxy and our service, should a test kill the hub
        yield hub
    finally:
        started |= children()
        stop(proc, timeout=30)
        for pid in started:
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
