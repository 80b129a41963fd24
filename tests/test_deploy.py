"""The deploy kit (deploy/) hangs together: YAML parses, names, ports, scopes and settings
agree between the Zero to JupyterHub values, the Kubernetes manifests, the image recipe
and the code.  (helm is not installable from PyPI, npm or Debian, so the values are
checked here rather than rendered; the plain-hub example runs for real in
tests/test_jupyterhub.py.)"""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys

import pytest
import yaml

from tests.servers import REPO

DEPLOY = os.path.join(REPO, "deploy")
SERVICE = "ngshare-gql"
ACCESS = f"access:services!service={SERVICE}"


def load(*path: str) -> list[dict]:
    with open(os.path.join(DEPLOY, *path)) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


@pytest.fixture(scope="module")
def values() -> dict:
    (doc,) = load("z2jh-values.yaml")
    return doc


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict]:
    docs = load("kubernetes", "ngshare-gql.yaml") + load("kubernetes", "migrate-job.yaml")
    return {doc["kind"]: doc for doc in docs}


def test_values_register_the_service_with_roles_and_token_scopes(values, manifests):
    service = values["hub"]["services"][SERVICE]
    k8s_service = manifests["Service"]
    assert service["url"] == f"http://{k8s_service['metadata']['name']}:{k8s_service['spec']['ports'][0]['port']}"
    assert service["apiToken"] == manifests["Secret"]["stringData"]["JUPYTERHUB_API_TOKEN"]
    roles = values["hub"]["loadRoles"]
    assert ACCESS in roles["user"]["scopes"] and "self" in roles["user"]["scopes"]
    assert roles[SERVICE]["services"] == [SERVICE]
    assert {"read:users", "read:groups"} <= set(roles[SERVICE]["scopes"])
    scopes = values["hub"]["config"]["Spawner"]["server_token_scopes"]
    assert ACCESS in scopes and "users:activity!user" in scopes
    assert values["singleuser"]["extraEnv"]["NGSHARE_URL"].endswith(f"/services/{SERVICE}/")
    nbgrader_config = values["singleuser"]["extraFiles"]["nbgrader-exchange"]["stringData"]
    assert "from ngshare_gql.nbgrader import configure" in nbgrader_config


def test_manifests_agree_on_ports_probes_settings_and_secrets(manifests):
    config = manifests["ConfigMap"]["data"]
    prefix = config["JUPYTERHUB_SERVICE_PREFIX"]
    assert prefix == f"/services/{SERVICE}/"
    assert config["JUPYTERHUB_OAUTH_CALLBACK_URL"] == prefix + "oauth_callback"
    pod = manifests["Deployment"]["spec"]["template"]
    assert pod["metadata"]["labels"]["hub.jupyter.org/network-access-hub"] == "true"
    (container,) = pod["spec"]["containers"]
    assert container["ports"][0]["containerPort"] == 8080
    assert manifests["Service"]["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    assert container["readinessProbe"]["httpGet"]["path"] == prefix + "healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == prefix + "livez"
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == prefix + "metrics"
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/var/lib/ngshare-gql"}
    assert config["NGSHARE_DATABASE_URL"].startswith("sqlite:////var/lib/ngshare-gql/")
    # Every setting named is one the code or the entrypoint reads.
    sources = ""
    for path in ("ngshare_gql/config.py", "deploy/gunicorn.conf.py", "deploy/entrypoint.sh"):
        with open(os.path.join(REPO, path)) as f:
            sources += f.read()
    named = set(config) | set(manifests["Secret"]["stringData"])
    unknown = {name for name in named if f'"{name}"' not in sources and name not in sources}
    assert not unknown, f"settings nothing reads: {unknown}"
    job = manifests["Job"]["spec"]["template"]["spec"]["containers"][0]
    assert job["command"][-1].endswith("exec flask --app ngshare_gql:create_app db upgrade")
    assert job["envFrom"] == container["envFrom"]


@pytest.mark.parametrize("url", ["sqlite:////var/lib/ngshare-gql/ngshare.db", ""])
def test_the_migration_job_refuses_a_database_of_its_own(manifests, url, tmp_path):
    """The Job has no volume: on the ConfigMap's SQLite URL (or none) it would migrate a
    file inside its own pod and succeed while the real database stays as it was."""
    job = manifests["Job"]["spec"]["template"]["spec"]["containers"][0]
    (tmp_path / "flask").write_text("#!/bin/sh\necho flask ran\n")
    (tmp_path / "flask").chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "NGSHARE_DATABASE_URL": url}
    refused = subprocess.run(job["command"], env=env, capture_output=True, text=True)
    assert refused.returncode == 1 and "flask ran" not in refused.stdout
    assert "this Job is for PostgreSQL" in refused.stderr
    env["NGSHARE_DATABASE_URL"] = "postgresql://ngshare@postgres/ngshare"
    ran = subprocess.run(job["command"], env=env, capture_output=True, text=True)
    assert ran.returncode == 0 and ran.stdout == "flask ran\n"


def load_hub_config(tmp_path, before: str = "") -> object:
    """deploy/jupyterhub_config.py loaded as the README says, from a jupyterhub_config.py
    that has ``before`` in it first; the resulting config."""
    from traitlets.config.loader import PyFileConfigLoader

    path = tmp_path / "jupyterhub_config.py"
    path.write_text(
        f"c = get_config()\n{before}\n"
        f"load_subconfig({os.path.join(DEPLOY, 'jupyterhub_config.py')!r})\n"
    )
    return PyFileConfigLoader(path.name, path=str(tmp_path)).load_config()


def test_hub_config_adds_to_the_operators_settings_and_replaces_none(tmp_path, monkeypatch):
    monkeypatch.setenv("NGSHARE_S3_BUCKET", "course-files")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key-id")
    monkeypatch.setenv("NGSHARE_METRICS_TOKEN", "scrape")
    monkeypatch.setenv("UNRELATED_SECRET", "not for the service")
    config = load_hub_config(
        tmp_path,
        """
c.JupyterHub.services = [{"name": "idle-culler", "command": ["cull"]}]
c.JupyterHub.load_roles = [{"name": "idle-culler", "services": ["idle-culler"], "scopes": []}]
c.JupyterHub.extra_user_scopes = {"read:groups"}
c.Spawner.server_token_scopes = ["users:activity!user", "read:users:name!user"]
""",
    )
    hub = config.JupyterHub
    assert [s["name"] for s in hub.services] == ["idle-culler", SERVICE]
    assert [r["name"] for r in hub.load_roles] == ["idle-culler", f"{SERVICE}-service"]
    assert hub.extra_user_scopes == {"read:groups", ACCESS}
    assert config.Spawner.server_token_scopes == [
        "users:activity!user", "read:users:name!user",
        "users:activity!user", "access:servers!server", ACCESS,
    ]
    environment = hub.services[1]["environment"]
    assert environment["NGSHARE_S3_BUCKET"] == "course-files"
    assert environment["AWS_ACCESS_KEY_ID"] == "key-id"
    assert environment["NGSHARE_METRICS_TOKEN"] == "scrape"
    assert "UNRELATED_SECRET" not in environment and "PATH" not in environment


def test_hub_config_gives_access_over_a_list_and_listens_where_the_hub_proxies(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("NGSHARE_BIND", "0.0.0.0:8080")  # e.g. a hub image built FROM ours
    monkeypatch.setenv("NGSHARE_PORT", "10555")
    config = load_hub_config(tmp_path, 'c.JupyterHub.extra_user_scopes = ["read:groups"]')
    assert set(config.JupyterHub.extra_user_scopes) == {"read:groups", ACCESS}
    (service,) = config.JupyterHub.services.get_value([])
    assert service["url"] == "http://127.0.0.1:10555"
    assert service["environment"]["NGSHARE_BIND"] == "127.0.0.1:10555"


def test_hub_config_alone(tmp_path):
    config = load_hub_config(tmp_path)
    # Unset, a notebook token has the "server" role's scopes: those, and the access scope.
    assert config.Spawner.server_token_scopes.get_value([]) == [
        "users:activity!user", "access:servers!server", ACCESS
    ]
    assert [s["name"] for s in config.JupyterHub.services.get_value([])] == [SERVICE]
    assert config.JupyterHub.extra_user_scopes.get_value(set()) == {ACCESS}


def test_hub_config_before_jupyterhub_6_gives_the_user_role_the_access(tmp_path, monkeypatch):
    """extra_user_scopes came with JupyterHub 6; before it, the "user" role is defined."""
    import jupyterhub

    monkeypatch.setattr(jupyterhub, "version_info", (5, 4, 0))
    config = load_hub_config(
        tmp_path, 'c.JupyterHub.load_roles = [{"name": "culler", "scopes": []}]'
    ).JupyterHub
    assert [r["name"] for r in config.load_roles] == ["culler", "user", f"{SERVICE}-service"]
    assert config.load_roles[1]["scopes"] == ["self", ACCESS]
    assert "extra_user_scopes" not in config


def test_dockerfile_copies_what_exists_and_runs_the_entrypoint():
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        dockerfile = f.read()
    for line in re.findall(r"^COPY (?!--from)(.+)$", dockerfile, flags=re.M):
        for source in line.split()[:-1]:
            assert os.path.exists(os.path.join(REPO, source)), source
    assert "deploy/entrypoint.sh" in dockerfile and "graphiql-assets.sh" in dockerfile
    subprocess.run(["sh", "-n", os.path.join(DEPLOY, "entrypoint.sh")], check=True)


def test_gunicorn_conf_reads_the_environment(monkeypatch, tmp_path):
    path = os.path.join(DEPLOY, "gunicorn.conf.py")
    monkeypatch.delenv("NGSHARE_BIND", raising=False)
    monkeypatch.setenv("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101")
    monkeypatch.setenv("NGSHARE_WORKERS", "3")
    monkeypatch.setenv("NGSHARE_THREADS", "5")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    conf = runpy.run_path(path)
    assert (conf["bind"], conf["workers"], conf["threads"]) == ("127.0.0.1:10101", 3, 5)
    assert conf["worker_class"] == "gthread" and conf["control_socket_disable"] is True
    (tmp_path / "metrics" / "counter_1.db").write_bytes(b"old")
    conf["on_starting"](None)
    assert os.listdir(tmp_path / "metrics") == []
    monkeypatch.setenv("NGSHARE_BIND", "0.0.0.0:9000")
    assert runpy.run_path(path)["bind"] == "0.0.0.0:9000"


def test_idle_connections_outlive_the_proxys_reuse(monkeypatch, tmp_path):
    """configurable-http-proxy reuses its connections to us whatever their idle time, and
    load balancers keep theirs up to ~60 s: closing ours sooner races their reuse."""
    path = os.path.join(DEPLOY, "gunicorn.conf.py")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    monkeypatch.delenv("NGSHARE_KEEPALIVE", raising=False)
    assert runpy.run_path(path)["keepalive"] > 60
    monkeypatch.setenv("NGSHARE_KEEPALIVE", "5")
    assert runpy.run_path(path)["keepalive"] == 5


def test_a_worker_keeps_its_startup_objects_out_of_full_collections(tmp_path):
    """After ``post_worker_init`` the app's ~100,000 startup objects are frozen, so a
    full collection walks only what came later (it walked them all: 50-70 ms)."""
    code = (
        "import gc, runpy, sys; import wsgi; "
        "conf = runpy.run_path(sys.argv[1]); conf['post_worker_init'](None); "
        "print(gc.get_freeze_count(), len(gc.get_objects()))"
    )
    env = dict(os.environ, NGSHARE_AUTH="dev", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "m"),
               NGSHARE_DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite")
    out = subprocess.run(
        [sys.executable, "-c", code, os.path.join(DEPLOY, "gunicorn.conf.py")],
        cwd=REPO, env=env, capture_output=True, text=True, check=True,
    ).stdout.split()
    frozen, tracked = map(int, out)
    assert frozen > 50_000
    assert tracked < frozen / 20


QUIT_WHILE_SUBMITTING = """
import os, runpy, signal, sys, types
from concurrent.futures import ThreadPoolExecutor
from gunicorn.workers.gthread import ThreadWorker

conf = runpy.run_path(sys.argv[1])
worker = ThreadWorker.__new__(ThreadWorker)  # what the quit handlers use of a worker
worker.tpool, worker.alive = ThreadPoolExecutor(2), True
worker.cfg = types.SimpleNamespace(worker_int=lambda w: print("worker_int", flush=True))
signal.signal(signal.SIGQUIT, worker.handle_quit)  # gunicorn's own, as init_signals sets
conf["post_worker_init"](worker)
with worker.tpool._shutdown_lock:  # the main thread inside tpool.submit()
    os.kill(os.getpid(), signal.SIGQUIT)
    signal.pause()
"""


def test_a_worker_told_to_quit_while_handing_a_connection_over_exits(tmp_path):
    """gthread's own quit handler shuts the pool down, taking the lock that submit()
    holds: a worker signalled then hung until the master killed it (graceful_timeout).
    With the config's handler it quits at once, running the worker_int hook."""
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "m"))
    done = subprocess.run(
        [sys.executable, "-c", QUIT_WHILE_SUBMITTING, os.path.join(DEPLOY, "gunicorn.conf.py")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=20,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "worker_int\n"
