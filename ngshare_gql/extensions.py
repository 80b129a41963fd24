"""Flask extensions, created once here and bound to the app in :func:`create_app`.

Flask-Migrate is not among them: it brings Alembic (about 20 MB per process), which
only the ``flask db`` commands need; :func:`migration_commands` loads it for them.
"""

import click
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData

# Named constraints keep Alembic migrations portable between SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Objects stay readable after a commit: resolvers return what a mutation just wrote.
db = SQLAlchemy(
    metadata=MetaData(naming_convention=NAMING), session_options={"expire_on_commit": False}
)


def insert_ignore(table: sa.Table, values: dict) -> sa.Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` for SQLite and PostgreSQL alike: the way to
    create a row that a concurrent request may be creating too."""
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).values(**values).on_conflict_do_nothing()


def migration_commands(app: Flask, directory: str) -> click.Group:
    """``flask db ...`` for ``app``, importing Flask-Migrate when a command is looked up."""

    class MigrationCommands(click.Group):
        real: click.Group | None = None

        def _load(self) -> click.Group:
            if self.real is None:
                from flask_migrate import Migrate

                Migrate(app, db, directory=directory, render_as_batch=True)
                self.real = app.cli.commands["db"]  # the group Migrate just registered
            return self.real

        def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
            real = self._load()  # its options (--directory, -x) and callback set them up
            self.params, self.callback = real.params, real.callback
            return super().parse_args(ctx, args)

        def list_commands(self, ctx: click.Context) -> list[str]:
            return self._load().list_commands(ctx)

        def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
            return self._load().get_command(ctx, name)

    return MigrationCommands("db", help="Perform database migrations (Flask-Migrate).")
