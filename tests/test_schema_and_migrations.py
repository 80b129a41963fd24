"""Drift checks: the exported SDL matches the code, and the migrations match the models."""

from __future__ import annotations

import os
import sqlite3
import subprocess

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ngshare_gql import create_app
from ngshare_gql.config import Settings
from ngshare_gql.extensions import db
from ngshare_gql.graphql.schema import schema
from tests.conftest import GQL, release, release_feedback, submit
from tests.servers import REPO, create_database, flask_cli, service_env


def test_schema_graphql_matches_the_code():
    with open(os.path.join(REPO, "schema.graphql")) as f:
        exported = f.read()
    assert exported.strip() == schema.as_str().strip(), (
        "schema.graphql is stale: run `python -m ngshare_gql.graphql.schema > schema.graphql`"
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/service.db"
    return create_database(request.getfixturevalue("postgres_server"), "ngshare_migrations")


def test_flask_db_upgrade_on_an_empty_database_matches_the_models(tmp_path, empty_database):
    env = service_env(tmp_path, NGSHARE_DATABASE_URL=empty_database)
    flask_cli(env, "db", "upgrade")
    url = env["NGSHARE_DATABASE_URL"]
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        diff = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True}), db.metadata
        )
    engine.dispose()
    assert diff == [], f"models and migrations differ; add a revision: {diff}"
    if url.startswith("sqlite:///"):  # what the comparison above does not look at
        with sqlite3.connect(url[len("sqlite:///") :]) as connection:
            (sql,) = connection.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'file'"
            ).fetchone()
            indexes = connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'file'"
            ).fetchall()
        assert "AUTOINCREMENT" in sql and "CONSTRAINT ck_file_one_owner CHECK" in sql, sql
        assert len(indexes) == 4, indexes
    # And back down to nothing, so every revision is reversible.
    flask_cli(env, "db", "downgrade", "base")
    engine = sa.create_engine(url)
    tables = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    assert tables <= {"alembic_version", "sqlite_sequence"}  # the latter is SQLite's own


def test_downgrading_below_0002_keeps_what_0001_would_have(tmp_path):
    """0002 keeps submissions cleared from the inbound, with their feedback. Going back
    below it deletes those (as removing them did before) and nothing else, although on
    SQLite dropping the column rebuilds the table, whose DROP, with foreign keys on,
    cascades into every feedback and file row."""
    path = tmp_path / "service.db"
    env = service_env(tmp_path, NGSHARE_DATABASE_URL=f"sqlite:///{path}")
    flask_cli(env, "db", "upgrade")
    settings = Settings(
        database_url=env["NGSHARE_DATABASE_URL"], auth="dev", admins=("admin",), blob_store="sql"
    )
    app = create_app(settings)
    client = app.test_client()
    admin, ins = GQL(client, "admin"), GQL(client, "ins")
    admin('mutation { createCourse(id: "c1") { id } }')
    for role, users in (("INSTRUCTOR", ["ins"]), ("STUDENT", ["s1", "s2"])):
        members = ", ".join(f'{{user: "{u}"}}' for u in users)
        admin(f'mutation {{ addMembers(courseId: "c1", role: {role}, members: [{members}])'
              " { user } }")
    release(ins, "c1", "ps1", {"a.ipynb": b"{}"})
    for student in ("s1", "s2"):
        submit(GQL(client, student), "c1", "ps1", {"a.ipynb": student.encode()}, ts="t1")
        release_feedback(ins, "c1", "ps1", student, "t1", f"<p>{student}</p>".encode())
    ins('mutation { removeSubmissions(courseId: "c1", assignment: "ps1", student: "s2") }')
    with app.app_context():
        db.engine.dispose()

    def rows() -> dict[str, list]:
        with sqlite3.connect(path) as connection:
            return {
                "submissions": connection.execute("SELECT student FROM submission").fetchall(),
                "feedback": connection.execute(
                    "SELECT s.student FROM feedback f JOIN submission s ON s.id = f.submission_id"
                ).fetchall(),
                "files": connection.execute("SELECT path FROM file ORDER BY id").fetchall(),
            }

    before = rows()
    assert before["submissions"] == [("s1",), ("s2",)] and len(before["feedback"]) == 2
    flask_cli(env, "db", "downgrade", "0001")
    after = rows()
    assert after["submissions"] == [("s1",)]
    assert after["feedback"] == [("s1",)]
    # The release's file, s1's submitted file and s1's feedback file.
    assert after["files"] == [("a.ipynb",), ("a.ipynb",), ("a.html",)]
    flask_cli(env, "db", "upgrade")


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
