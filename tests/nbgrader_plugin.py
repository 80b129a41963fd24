"""A pytest plugin that runs nbgrader's own exchange tests against our plugins.

Load it with ``-p tests.nbgrader_plugin`` next to ``--pyargs nbgrader.tests.apps...``:
it starts one service for the session, selects our exchange for every nbgrader
app through ``JUPYTER_CONFIG_PATH``, and before each test recreates the courses
the tests use with the OS user (nbgrader's tests act as one user in both roles)
as instructor and student, so no state leaks from one test to the next.
"""

from __future__ import annotations

import os
import tempfile

import pytest
from nbgrader.utils import get_username

from ngshare_gql.client import Client
from tests.servers import gunicorn_server, service_env

COURSES = ("abc101", "abc102", "xyz200")


def reset_courses(url: str, user: str) -> None:
    """Delete and recreate the test courses in one request (mutations run in order)."""
    admin = Client(url, "admin")
    existing = {c["id"] for c in admin.execute("{ courses { id } }")["courses"]}
    parts = []
    for i, course in enumerate(COURSES):
        if course in existing:
            parts.append(f'd{i}: deleteCourse(id: "{course}")')
        parts.append(f'c{i}: createCourse(id: "{course}") {{ id }}')
        for role in ("INSTRUCTOR", "STUDENT"):
            parts.append(
                f'{role[0].lower()}{i}: addMembers(courseId: "{course}", role: {role}, '
                f'members: [{{user: "{user}"}}]) {{ user }}'
            )
    admin.execute("mutation { " + " ".join(parts) + " }")


@pytest.fixture(scope="session")
def ngshare_service():
    with tempfile.TemporaryDirectory(prefix="ngshare-nbgrader-tests-") as tmp:
        env = service_env(tmp, NGSHARE_MAX_ALIASES="100")
        with gunicorn_server(env, workers=1, threads=4, log_path=f"{tmp}/server.log") as url:
            config_dir = os.path.join(tmp, "jupyter-config")
            os.makedirs(config_dir)
            with open(os.path.join(config_dir, "nbgrader_config.py"), "w") as fh:
                fh.write(
                    "from ngshare_gql.nbgrader import configure\n"
                    f"configure(get_config(), url={url!r})\n"
                )
            saved = {k: os.environ.get(k) for k in ("JUPYTER_CONFIG_PATH", "JUPYTERHUB_API_TOKEN")}
            os.environ["JUPYTER_CONFIG_PATH"] = config_dir
            os.environ["JUPYTERHUB_API_TOKEN"] = get_username()
            os.environ.setdefault("USER", get_username())  # nbgrader's tests read $USER
            try:
                yield url
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value


@pytest.fixture(autouse=True)
def ngshare_courses(ngshare_service):
    reset_courses(ngshare_service, get_username())
    yield


def pytest_collection_modifyitems(config, items):
    """Deselect exactly the tests named in NGSHARE_NBGRADER_DESELECT (one
    ``file.py::Class::test`` per line); ``--deselect`` would match prefixes."""
    names = set(filter(None, os.environ.get("NGSHARE_NBGRADER_DESELECT", "").splitlines()))
    if not names:
        return
    keep, drop = [], []
    for item in items:
        short = f"{os.path.basename(str(item.path))}::{item.cls.__name__ if item.cls else ''}"
        (drop if f"{short}::{item.name}" in names else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
