"""The application factory: settings, extensions, identity, blob store and blueprints."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask, jsonify

from ngshare_gql import config
from ngshare_gql.auth import DevIdentity, HubIdentity
from ngshare_gql.errors import ExchangeError, ServiceUnavailable
from ngshare_gql.extensions import db, migration_commands
from ngshare_gql.roles import GroupRules
from ngshare_gql.storage.blobs import BlobStore, FilesystemBlobStore, SqlBlobStore
from ngshare_gql.storage.staging import (
    StagingRequest,
    discard_staged_files,
    file_system_type,
    maps_safely,
    remove_stale_staging,
)

log = logging.getLogger("ngshare_gql")


def _migrations_dir() -> str:
    """Alembic's scripts: their copy inside the package in an installed wheel (see
    pyproject.toml), else ``migrations/`` beside the package (a checkout, an editable
    install)."""
    package = os.path.dirname(os.path.abspath(__file__))
    packaged = os.path.join(package, "migrations")
    beside = os.path.join(os.path.dirname(package), "migrations")
    return packaged if os.path.isdir(packaged) else beside


MIGRATIONS = _migrations_dir()


@dataclass
class Services:
    """What the request handlers need, kept in ``app.extensions["ngshare"]``."""

    settings: config.Settings
    identity: HubIdentity | DevIdentity
    blobs: BlobStore
    staging_dir: str
    group_rules: GroupRules
    staging_maps: bool = True  # hash staged uploads through a memory map (a local disk)


def _database_url(settings: config.Settings, instance_path: str) -> str:
    if settings.database_url:
        url = settings.database_url
        # Operators paste postgres:// URLs from their providers; SQLAlchemy wants the driver.
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        return url
    return "sqlite:///" + os.path.join(instance_path, "ngshare.db")


def _blob_store(settings: config.Settings, instance_path: str) -> BlobStore:
    if settings.blob_store == "sql":
        return SqlBlobStore()
    if settings.blob_store == "filesystem":
        return FilesystemBlobStore(settings.blob_dir or os.path.join(instance_path, "blobs"))
    if settings.blob_store == "s3":
        from ngshare_gql.storage.s3 import S3BlobStore

        return S3BlobStore(settings)
    raise ValueError(f"NGSHARE_BLOB_STORE={settings.blob_store!r}: use 'sql', 'filesystem' or 's3'")


def _identity(settings: config.Settings) -> HubIdentity | DevIdentity:
    if settings.dev_identity:
        log.warning(
            "INSECURE: NGSHARE_AUTH=dev: any token is accepted as the user name. "
            "Never use this outside a demo or a test."
        )
        return DevIdentity()
    if settings.auth != "hub":
        raise ValueError(f"NGSHARE_AUTH={settings.auth!r}: use 'hub' (default) or 'dev'")
    return HubIdentity(
        settings.hub_api_url,
        service_name=settings.service_name,
        timeout=settings.hub_timeout,
        ttl=settings.identity_cache_ttl,
        failure_ttl=settings.identity_failure_ttl,
        outage_grace=settings.hub_outage_grace,
        service_token=settings.oauth_client_secret,
    )


def _engine_options(url: str, pool_size: int) -> dict:
    """SQLAlchemy's engine options: a pooled connection per request thread (an
    in-memory SQLite database is one static connection, with no pool to size)."""
    if not url.startswith("sqlite"):
        return {"pool_pre_ping": True, "pool_size": pool_size}
    options: dict = {"connect_args": {"timeout": 30}}
    if sa.engine.make_url(url).database not in (None, "", ":memory:"):
        options["pool_size"] = pool_size
    return options


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_app(settings: config.Settings | None = None) -> Flask:
    """Build the WSGI app; settings default to the environment's."""
    from ngshare_gql import metrics, oauth
    from ngshare_gql.graphql.schema import build_schema
    from ngshare_gql.views import files, health
    from ngshare_gql.views.graphql import GraphQLView, graphiql_asset

    settings = settings or config.from_environ()
    # No default /static route: the only static files are GraphiQL's, under the prefix.
    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    os.makedirs(app.instance_path, exist_ok=True)
    app.request_class = StagingRequest
    url = _database_url(settings, app.instance_path)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=url,
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(url, settings.db_pool_size),
        # The operation's files plus its small JSON parts.
        MAX_CONTENT_LENGTH=settings.max_upload_size + 16 * 1024 * 1024,
        SECRET_KEY=settings.secret_key or os.urandom(32),
    )
    db.init_app(app)
    app.cli.add_command(migration_commands(app, MIGRATIONS))
    if url.startswith("sqlite"):
        with app.app_context():
            sa.event.listen(db.engine, "connect", _sqlite_pragmas)

    blobs = _blob_store(settings, app.instance_path)
    staging = getattr(blobs, "staging", None) or os.path.join(
        app.instance_path if settings.blob_store == "sql" else tempfile.gettempdir(), "staging"
    )
    os.makedirs(staging, exist_ok=True)
    if removed := remove_stale_staging(staging):
        log.warning("removed %d staging files left by killed workers", removed)
    staging_fs = file_system_type(staging)
    staging_maps = maps_safely(staging_fs)
    if not staging_maps:
        log.warning(
            "staging folder %s is on %s, a network or FUSE file system: uploads are read "
            "back with preadv, not mapped (a few per cent slower; a failed read fails one "
            "upload, not the worker)", staging, staging_fs,
        )
    app.extensions["ngshare"] = Services(
        settings=settings,
        identity=_identity(settings),
        blobs=blobs,
        staging_dir=staging,
        group_rules=GroupRules(settings.instructor_group, settings.student_group),
        staging_maps=staging_maps,
    )
    app.teardown_request(discard_staged_files)

    prefix = settings.service_prefix.rstrip("/")
    app.add_url_rule(
        settings.graphql_path,
        view_func=GraphQLView.as_view(
            "graphql", schema=build_schema(settings), multipart_uploads_enabled=True
        ),
    )
    app.register_blueprint(files.bp, url_prefix=prefix)
    app.register_blueprint(health.bp, url_prefix=prefix)
    if not settings.dev_identity:
        app.register_blueprint(oauth.bp, url_prefix=prefix)
    app.add_url_rule(prefix + "/static/graphiql/<path:filename>", view_func=graphiql_asset)
    app.add_url_rule(prefix + "/metrics", "metrics", metrics.metrics_view)
    app.before_request(metrics.label_endpoint)
    app.wsgi_app = metrics.RequestObserver(app.wsgi_app)  # type: ignore[method-assign]

    @app.errorhandler(ExchangeError)
    def exchange_error(exc: ExchangeError):
        return jsonify(error=exc.message, code=exc.code), exc.status

    @app.errorhandler(sa.exc.OperationalError)
    @app.errorhandler(sa.exc.InterfaceError)
    def database_error(exc: sa.exc.DBAPIError):
        log.warning("database unavailable: %s", type(exc).__name__)
        unavailable = ServiceUnavailable("the database is unavailable; try again shortly")
        return exchange_error(unavailable)

    from ngshare_gql import cli

    cli.register(app)
    return app
