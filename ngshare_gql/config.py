"""Settings, read once from the environment.

Operators configure the service with ``NGSHARE_*`` variables; when it runs as a
JupyterHub service the hub's ``JUPYTERHUB_*`` variables fill in the rest.
Every setting has a safe default: no dev identity, no admins, the embedded
SQLite database and blob store under the instance folder.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

MB = 1024 * 1024


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    auth: str = "hub"
    admins: tuple[str, ...] = ()
    hub_api_url: str = "http://127.0.0.1:8081/hub/api"
    hub_timeout: float = 5.0
    identity_cache_ttl: float = 60.0
    identity_failure_ttl: float = 2.0
    # While the hub gives no answer, a token keeps the hub's answer of up to this long ago.
    hub_outage_grace: float = 300.0
    # Database connections a worker keeps open: one per request thread, so a busy
    # moment does not open and close connections (a fork on PostgreSQL, a schema
    # parse on SQLite) that the pool would otherwise drop again.
    db_pool_size: int = 8
    service_prefix: str = "/"
    service_name: str = "ngshare-gql"
    instructor_group: str = "formgrade-{course}"
    student_group: str = "nbgrader-{course}"
    blob_store: str = "sql"
    blob_dir: str | None = None
    s3_bucket: str = "ngshare-gql"
    s3_prefix: str = "blobs/"
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_presign_downloads: bool = False
    s3_presign_expiry: int = 60  # a bearer link: usable this long after access ends
    # "auto", "path" (MinIO and most in-cluster S3 stand-ins) or "virtual".
    s3_addressing_style: str = "auto"
    s3_multipart_threshold: int = 16 * MB
    # Unset: boto3's own chain (AWS_* variables, web identity / IRSA, instance role).
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = field(default=None, repr=False)
    max_file_size: int = 100 * MB
    max_upload_size: int = 1024 * MB
    max_query_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5000
    secret_key: str | None = field(default=None, repr=False)
    # Browser login with the hub's OAuth flow (set by the hub for a managed service).
    hub_base_url: str = "/"
    hub_host: str = ""
    oauth_client_id: str = "service-ngshare-gql"
    oauth_callback_url: str = "/services/ngshare-gql/oauth_callback"
    oauth_client_secret: str | None = field(default=None, repr=False)
    session_lifetime: int = 8 * 3600
    # A folder holding GraphiQL's files (scripts/graphiql-assets.sh); None: the CDN.
    graphiql_assets: str | None = None
    # When set, /metrics needs "Authorization: Bearer <it>" (it is public through the proxy).
    metrics_token: str | None = field(default=None, repr=False)
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def graphql_path(self) -> str:
        return self.service_prefix + "graphql"

    @property
    def dev_identity(self) -> bool:
        return self.auth == "dev"


def _secret_key(env: Mapping[str, str]) -> str | None:
    """NGSHARE_SECRET_KEY, else a key derived from the hub-issued API token.

    Every gunicorn worker and replica must sign cookies with the same key; the
    hub gives all of them the same token, and deriving keeps the token itself
    out of the signing code.
    """
    if env.get("NGSHARE_SECRET_KEY"):
        return env["NGSHARE_SECRET_KEY"]
    token = env.get("JUPYTERHUB_API_TOKEN")
    if token:
        return hashlib.sha256(b"ngshare-gql cookie key\0" + token.encode()).hexdigest()
    return None


def _default_graphiql_assets() -> str | None:
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static", "graphiql")
    return folder if os.path.isfile(os.path.join(folder, "graphiql.min.js")) else None


def _pool_size(get) -> int:
    """NGSHARE_DB_POOL_SIZE, else the request threads (NGSHARE_THREADS), else 8."""
    for name in ("NGSHARE_DB_POOL_SIZE", "NGSHARE_THREADS"):
        value = get(name)
        if value is not None:
            if not value.strip().isdigit() or int(value) < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}")
            return int(value)
    return Settings.db_pool_size


def from_environ(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``NGSHARE_*`` and ``JUPYTERHUB_*`` variables."""
    env = os.environ if environ is None else environ

    def get(name: str, default: str | None = None) -> str | None:
        value = env.get(name)
        return value if value not in (None, "") else default

    prefix = get("JUPYTERHUB_SERVICE_PREFIX", "/") or "/"
    if not prefix.endswith("/"):
        prefix += "/"
    return Settings(
        database_url=get("NGSHARE_DATABASE_URL"),
        auth=(get("NGSHARE_AUTH", "hub") or "hub").lower(),
        admins=_list(get("NGSHARE_ADMINS", "") or ""),
        hub_api_url=(get("JUPYTERHUB_API_URL", Settings.hub_api_url) or "").rstrip("/"),
        hub_timeout=float(get("NGSHARE_HUB_TIMEOUT", "5")),
        identity_cache_ttl=float(get("NGSHARE_IDENTITY_CACHE_TTL", "60")),
        hub_outage_grace=float(get("NGSHARE_HUB_OUTAGE_GRACE", "300")),
        db_pool_size=_pool_size(get),
        service_prefix=prefix,
        service_name=get("JUPYTERHUB_SERVICE_NAME", "ngshare-gql"),
        instructor_group=get("NGSHARE_INSTRUCTOR_GROUP", Settings.instructor_group),
        student_group=get("NGSHARE_STUDENT_GROUP", Settings.student_group),
        blob_store=(get("NGSHARE_BLOB_STORE", "sql") or "sql").lower(),
        blob_dir=get("NGSHARE_BLOB_DIR"),
        s3_bucket=get("NGSHARE_S3_BUCKET", Settings.s3_bucket),
        s3_prefix=get("NGSHARE_S3_PREFIX", Settings.s3_prefix),
        s3_endpoint_url=get("NGSHARE_S3_ENDPOINT_URL"),
        s3_region=get("NGSHARE_S3_REGION"),
        s3_presign_downloads=_bool(get("NGSHARE_S3_PRESIGN_DOWNLOADS", "false")),
        s3_presign_expiry=int(get("NGSHARE_S3_PRESIGN_EXPIRY", str(Settings.s3_presign_expiry))),
        s3_addressing_style=(get("NGSHARE_S3_ADDRESSING_STYLE", "auto") or "auto").lower(),
        s3_multipart_threshold=int(
            get("NGSHARE_S3_MULTIPART_THRESHOLD", str(Settings.s3_multipart_threshold))
        ),
        s3_access_key_id=get("NGSHARE_S3_ACCESS_KEY_ID"),
        s3_secret_access_key=get("NGSHARE_S3_SECRET_ACCESS_KEY"),
        max_file_size=int(get("NGSHARE_MAX_FILE_SIZE", str(Settings.max_file_size))),
        max_upload_size=int(get("NGSHARE_MAX_UPLOAD_SIZE", str(Settings.max_upload_size))),
        max_query_depth=int(get("NGSHARE_MAX_QUERY_DEPTH", str(Settings.max_query_depth))),
        max_aliases=int(get("NGSHARE_MAX_ALIASES", str(Settings.max_aliases))),
        max_tokens=int(get("NGSHARE_MAX_TOKENS", str(Settings.max_tokens))),
        secret_key=_secret_key(env),
        hub_base_url=get("JUPYTERHUB_BASE_URL", "/") or "/",
        hub_host=get("JUPYTERHUB_HOST", "") or "",
        oauth_client_id=get("JUPYTERHUB_CLIENT_ID")
        or "service-" + (get("JUPYTERHUB_SERVICE_NAME", "ngshare-gql") or ""),
        oauth_callback_url=get("JUPYTERHUB_OAUTH_CALLBACK_URL") or prefix + "oauth_callback",
        oauth_client_secret=get("JUPYTERHUB_API_TOKEN"),
        session_lifetime=int(get("NGSHARE_SESSION_LIFETIME", str(Settings.session_lifetime))),
        metrics_token=get("NGSHARE_METRICS_TOKEN"),
        graphiql_assets=(
            None
            if (get("NGSHARE_GRAPHIQL_ASSETS", "") or "").lower() == "cdn"
            else get("NGSHARE_GRAPHIQL_ASSETS") or _default_graphiql_assets()
        ),
    )
