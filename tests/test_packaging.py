"""The wheel an operator installs (``pip install`` of the repository, not editable) holds
the whole package and the migrations, and ``flask db upgrade`` works from it alone."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from tests.servers import REPO

pytestmark = pytest.mark.slow


def tracked(folder: str) -> list[str]:
    """The files of ``folder`` that git tracks, relative to it."""
    out = subprocess.run(
        ["git", "ls-files", folder], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    return [os.path.relpath(line, folder) for line in out.splitlines()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> str:
    """A wheel built from a copy of the tracked sources (building in the repository
    would leave build/ and *.egg-info behind)."""
    src = tmp_path_factory.mktemp("src")
    for folder in ("ngshare_gql", "migrations"):
        for relative in tracked(folder):
            target = src / folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.join(REPO, folder, relative), target)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(os.path.join(REPO, name), src / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(src)],
        check=True,
        capture_output=True,
    )
    (name,) = os.listdir(out)
    return str(out / name)


def test_the_wheel_holds_every_module_template_and_migration(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    package = {
        f"ngshare_gql/{p}" for p in tracked("ngshare_gql") if p.endswith((".py", ".html"))
    }
    migrations = {f"ngshare_gql/migrations/{p}" for p in tracked("migrations")}
    assert len(migrations) >= 7 and "ngshare_gql/migrations/env.py" in migrations
    assert package | migrations <= names, sorted((package | migrations) - names)
    assert not any(n.startswith(("migrations/", "tests/", "bench/")) for n in names)


def test_flask_db_upgrade_works_from_the_installed_wheel_alone(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    db_path = tmp_path / "fresh.db"
    env = {
        **os.environ,
        "PYTHONPATH": str(site),  # ahead of the repository's editable install
        "NGSHARE_DATABASE_URL": f"sqlite:///{db_path}",
        "NGSHARE_AUTH": "dev",
    }

    def run(*args: str) -> str:
        return subprocess.run(
            [sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
            check=True,
        ).stdout

    where = run("-c", "import ngshare_gql.app as a; print(a.__file__); print(a.MIGRATIONS)")
    module, migrations = where.split()
    assert module.startswith(str(site)) and migrations == str(site / "ngshare_gql" / "migrations")
    run("-m", "flask", "--app", "ngshare_gql:create_app", "db", "upgrade")
    scripts = Config()
    scripts.set_main_option("script_location", os.path.join(REPO, "migrations"))
    head = ScriptDirectory.from_config(scripts).get_current_head()
    with sqlite3.connect(db_path) as connection:
        (version,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
    assert version == head
    assert {"course", "assignment", "submission", "file", "blob"} <= tables
