"""The README's walkthrough runs as written against a live server (gunicorn, dev identity)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.servers import REPO, flask_cli, gunicorn_server, service_env


def walkthrough() -> str:
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    match = re.search(r"<!-- walkthrough -->\n```bash\n(.*?)```", text, re.S)
    assert match, "README.md lost its walkthrough block"
    return match.group(1)


@pytest.mark.slow
def test_readme_walkthrough_works(tmp_path):
    env = service_env(tmp_path)
    flask_cli(env, "db", "upgrade")
    flask_cli(env, "course", "add", "demo", "--instructor", "instructor", "--student", "student1")
    with gunicorn_server(env, upgrade=False) as url:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", walkthrough()],
            env={**env, "BASE": url.rstrip("/")},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert '"releaseAssignment":{"name":"ps1"' in out.replace(" ", "")
    assert out.count("fetched/") == 3  # three files downloaded and hashed
    assert '"student":"student1","timestamp":"2026-01-1009:00:00.000000UTC"' in out.replace(" ", "")
    assert out.rstrip().endswith("<html><body>Well done</body></html>")
