"""Settings, read once from the environment.

Operators configure the service with ``NGSHARE_*`` variables; when it runs as a
JupyterHub service the hub's ``JUPYTERHUB_*`` variables fill in the rest.
Every setting has a safe default: no dev identity, no admins, the embedded
SQLite database and blob store under the instance folder.
"""

from __future__ import annotations

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
    max_file_size: int = 100 * MB
    max_upload_size: int = 1024 * MB
    max_query_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5000
    secret_key: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def graphql_path(self) -> str:
        return self.service_prefix + "graphql"

    @property
    def dev_identity(self) -> bool:
        return self.auth == "dev"


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
        max_file_size=int(get("NGSHARE_MAX_FILE_SIZE", str(Settings.max_file_size))),
        max_upload_size=int(get("NGSHARE_MAX_UPLOAD_SIZE", str(Settings.max_upload_size))),
        max_query_depth=int(get("NGSHARE_MAX_QUERY_DEPTH", str(Settings.max_query_depth))),
        max_aliases=int(get("NGSHARE_MAX_ALIASES", str(Settings.max_aliases))),
        max_tokens=int(get("NGSHARE_MAX_TOKENS", str(Settings.max_tokens))),
        secret_key=get("NGSHARE_SECRET_KEY") or get("JUPYTERHUB_API_TOKEN"),
    )
