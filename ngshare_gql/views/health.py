"""Readiness and liveness for operators and Kubernetes probes."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify

from ngshare_gql.extensions import db

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz():
    checks = {}
    try:
        db.session.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        log.warning("healthz: database check failed: %s", exc)
        checks["database"] = "unavailable"
    try:
        current_app.extensions["ngshare"].blobs.check()
        checks["blobs"] = "ok"
    except Exception as exc:  # noqa: BLE001
        log.warning("healthz: blob store check failed: %s", exc)
        checks["blobs"] = "unavailable"
    healthy = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if healthy else "unavailable", **checks), 200 if healthy else 503


@bp.get("/livez")
def livez():
    """A worker answers; nothing else is checked. An unreachable database or blob store
    makes /healthz fail, which takes a replica out of rotation, but restarting it would
    not bring them back, so liveness does not depend on them."""
    return jsonify(status="ok")
