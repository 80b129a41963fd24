"""Browser login through the hub's OAuth flow (what JupyterHub's ``HubOAuth`` does).

1. ``{prefix}oauth_login?next=...`` sends the browser to the hub's
   ``/hub/api/oauth2/authorize`` with a random ``state``, remembered in a short-lived
   signed cookie together with the page to return to.
2. The hub logs the user in, checks they may access this service, and sends the browser
   back to ``{prefix}oauth_callback?code=...&state=...``.
3. We check ``state``, trade the code for a token at ``{hub_api}/oauth2/token`` (with our
   hub-issued API token as the client secret), ask the hub who that token belongs to
   (the same look-up and scope check as for API tokens), and set our own session cookie
   (identity and CSRF secret; see :mod:`ngshare_gql.auth`).  The token is dropped.

Group or admin changes reach a browser session, as they reach API tokens, within the
identity cache's TTL: each request asks the hub about the session's user with the
service's own token (:meth:`ngshare_gql.auth.HubIdentity.current`).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import replace
from urllib.parse import urlencode

import requests
from flask import Blueprint, Request, Response, current_app, redirect, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from markupsafe import escape

from ngshare_gql.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    session_cookie_value,
)
from ngshare_gql.errors import ExchangeError, HubUnavailable, Unauthenticated

bp = Blueprint("oauth", __name__)
log = logging.getLogger(__name__)

STATE_COOKIE = "ngshare-gql-oauth-state"
STATE_MAX_AGE = 600


def _settings():
    return current_app.extensions["ngshare"].settings


def _state_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="ngshare-gql oauth state")


def _secure(req: Request) -> bool:
    """Mark cookies Secure when the browser talks https (to us, the hub's proxy or an ingress).

    Proxies append to ``X-Forwarded-Proto`` (an ingress's ``https`` then the proxy's
    ``http``), so https anywhere in the chain counts.
    """
    forwarded = req.headers.get("X-Forwarded-Proto", "").lower()
    return req.is_secure or "https" in (part.strip() for part in forwarded.split(","))


def _local_next(value: str | None) -> str:
    """Where to go after login: a path under our prefix, never another site."""
    prefix = _settings().service_prefix
    if (
        value
        and value.startswith(prefix)
        and not value.startswith("//")
        and "\\" not in value
        and "/.." not in value
    ):
        return value
    return _settings().graphql_path


def login_redirect(next_url: str | None) -> Response:
    """Send the browser to the hub to log in; it comes back to :func:`callback`."""
    settings = _settings()
    state = secrets.token_urlsafe(24)
    query = urlencode(
        {
            "client_id": settings.oauth_client_id,
            "redirect_uri": settings.oauth_callback_url,
            "response_type": "code",
            "state": state,
        }
    )
    base = settings.hub_base_url.rstrip("/") + "/hub/api/oauth2/authorize"
    response = redirect(f"{settings.hub_host}{base}?{query}")
    response.set_cookie(
        STATE_COOKIE,
        _state_serializer().dumps({"state": state, "next": _local_next(next_url)}),
        max_age=STATE_MAX_AGE,
        path=settings.service_prefix,
        httponly=True,
        secure=_secure(request),
        samesite="Lax",
    )
    return response


@bp.get("/oauth_login")
def login() -> Response:
    return login_redirect(request.args.get("next"))


def _trade_code(code: str) -> str:
    settings = _settings()
    if not settings.oauth_client_secret:
        raise HubUnavailable("browser login needs JUPYTERHUB_API_TOKEN (run as a hub service)")
    try:
        response = requests.post(
            settings.hub_api_url + "/oauth2/token",
            data={
                "client_id": settings.oauth_client_id,
                "client_secret": settings.oauth_client_secret,
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": settings.oauth_callback_url,
            },
            timeout=settings.hub_timeout,
        )
    except requests.RequestException as exc:
        raise HubUnavailable(f"JupyterHub unreachable: {type(exc).__name__}") from None
    if response.status_code != 200:
        log.warning("oauth: the hub refused the code: HTTP %s", response.status_code)
        raise Unauthenticated("the hub refused the login code; please log in again")
    try:
        return str(response.json()["access_token"])
    except (ValueError, KeyError, TypeError):
        raise HubUnavailable("the hub sent an unexpected token answer") from None


def _page(message: str, status: int) -> Response:
    body = f"<!doctype html><title>ngshare-gql</title><p>{message}</p>"
    return Response(body, status=status, content_type="text/html; charset=utf-8")


@bp.get("/oauth_callback")
def callback() -> Response:
    settings = _settings()
    try:
        remembered = _state_serializer().loads(
            request.cookies.get(STATE_COOKIE, ""), max_age=STATE_MAX_AGE
        )
    except BadSignature:
        remembered = None
    state = request.args.get("state", "")
    code = request.args.get("code", "")
    if not remembered or not hmac.compare_digest(str(remembered["state"]), state) or not code:
        return _page(
            "This login link is stale or was not started by this browser. "
            f'<a href="{settings.graphql_path}">Start again</a>.',
            400,
        )
    try:
        token = _trade_code(code)
        identity = current_app.extensions["ngshare"].identity.identify(token)
    except ExchangeError as exc:
        return _page(str(escape(exc.message)), exc.status)
    # Keep only the groups that give course roles: the cookie stays small (browsers drop
    # cookies over 4 KB) and tells nothing else about the user.
    rules = current_app.extensions["ngshare"].group_rules
    identity = replace(
        identity,
        groups=frozenset(g for g in identity.groups if rules.courses_from_groups(frozenset({g}))),
    )
    csrf = secrets.token_urlsafe(32)
    response = redirect(_local_next(remembered.get("next")))
    cookie = {
        "path": settings.service_prefix,
        "secure": _secure(request),
        "samesite": "Lax",
        "max_age": settings.session_lifetime,
    }
    value = session_cookie_value(identity, csrf)
    response.set_cookie(SESSION_COOKIE, value, httponly=True, **cookie)
    # Readable by our own pages' scripts, so they can echo it in the X-CSRFToken header.
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, **cookie)
    response.delete_cookie(STATE_COOKIE, path=settings.service_prefix)
    return response


@bp.get("/logout")
def logout() -> Response:
    """Forget the browser session here (the hub's own login stays)."""
    prefix = _settings().service_prefix
    response = _page("Logged out of this service.", 200)
    response.delete_cookie(SESSION_COOKIE, path=prefix)
    response.delete_cookie(CSRF_COOKIE, path=prefix)
    return response
