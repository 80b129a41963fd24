"""Drift checks: the exported SDL matches the code, and the migrations match the models."""

from __future__ import annotations

import os
import sqlite3
import subprocess

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ngshare_gql.extensions import db
from ngshare_gql.graphql.schema import schema
from tests.servers import REPO, flask_cli, service_env


def test_schema_graphql_matches_the_code():
    with open(os.path.join(REPO, "schema.graphql")) as f:
        exported = f.read()
    assert exported.strip() == schema.as_str().strip(), (
        "schema.graphql is stale: run `python -m ngshare_gql.graphql.schema > schema.graphql`"
    )


def test_flask_db_upgrade_on_an_empty_database_matches_the_models(tmp_path):
    env = service_env(tmp_path)
    flask_cli(env, "db", "upgrade")
    url = env["NGSHARE_DATABASE_URL"]
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        diff = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True}), db.metadata
        )
    engine.dispose()
    assert diff == [], f"models and migrations differ; add a revision: {diff}"
    # And back down to nothing, so every revision is reversible.
    flask_cli(env, "db", "downgrade", "base")
    if url.startswith("sqlite:///"):
        tables = {
            row[0]
            for row in sqlite3.connect(url[len("sqlite:///") :]).execute(
                "SELECT name FROM sqlite_master WHERE type='table'"
            )
        }
        assert tables <= {"alembic_version"}


def test_operator_cli_manages_courses(tmp_path):
    env = service_env(tmp_path)
    flask_cli(env, "db", "upgrade")
    out = flask_cli(
        env, "course", "add", "cs101", "--instructor", "prof", "--student", "amy",
        "--student", "ben",
    ).stdout  # fmt: skip
    assert "created course cs101" in out
    listing = flask_cli(env, "course", "list").stdout
    assert "cs101" in listing and "prof" in listing and "amy, ben" in listing
    flask_cli(env, "course", "remove", "cs101", "--student", "amy")
    assert "amy" not in flask_cli(env, "course", "list").stdout
    flask_cli(env, "course", "remove", "cs101", "--yes")
    assert "cs101" not in flask_cli(env, "course", "list").stdout
    with pytest.raises(subprocess.CalledProcessError) as failed:
        flask_cli(env, "course", "remove", "nope", "--yes")
    assert "no course 'nope'" in failed.value.stderr
