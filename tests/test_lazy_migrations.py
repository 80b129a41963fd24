"""Alembic is loaded by the ``flask db`` commands only, not by every worker (~20 MB each)."""

from __future__ import annotations

import subprocess
import sys

from tests.servers import REPO, flask_cli, service_env


def test_serving_process_does_not_import_alembic(tmp_path):
    code = (
        "import sys, wsgi; "
        "print(sorted(m for m in ('alembic', 'flask_migrate') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=service_env(tmp_path),
        capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == "[]"


def test_flask_db_commands_and_their_options_still_work(tmp_path):
    env = service_env(tmp_path)
    assert "Running upgrade  -> 0001" in flask_cli(env, "db", "upgrade").stderr
    assert "(head)" in flask_cli(env, "db", "current").stdout
    assert "(head)" in flask_cli(env, "db", "--directory", "migrations", "current").stdout
    assert "No new upgrade operations" in flask_cli(env, "db", "check").stdout
    listed = flask_cli(env, "db", "--help").stdout
    assert "--directory" in listed and "upgrade" in listed and "downgrade" in listed
    flask_cli(env, "db", "downgrade", "base")
    assert "(head)" not in flask_cli(env, "db", "current").stdout
