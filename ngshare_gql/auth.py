"""Identity: who is calling, asked of JupyterHub with the caller's own token.

A request carries ``Authorization: token <t>`` (or ``Bearer <t>``), the API
token of the user's notebook server.  The hub's ``GET /user`` endpoint, called
*with that token*, answers with the user's name, admin flag and groups.  Answers
are cached for a short time under a hash of the token; the token itself is never
stored or logged.  The reply also lists the token's scopes: a token that lacks
``access:services!service=<our name>`` is refused, as JupyterHub's own HubAuth
does, so only tokens issued for this service (or for all services) work here.

Browsers log in with the hub's OAuth flow (:mod:`ngshare_gql.oauth`) and then
carry a signed, HttpOnly session cookie of ours holding their identity (name,
admin flag, groups) and a CSRF secret; never the hub token.  While the session
lasts, the admin flag and groups are asked of the hub again (``GET /users/<name>``
with the service's own token, cached like a token's answer), so a user removed from
a group or from the hub loses those rights as an API token would.  A cookie alone
authorizes only reads: any other method also needs the ``X-CSRFToken`` header
equal to that secret, which GraphiQL sends from the ``csrftoken`` cookie that a
page of another site cannot read.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import requests
from flask import Request, current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ngshare_gql.errors import ExchangeError, Forbidden, HubUnavailable, Unauthenticated
from ngshare_gql.metrics import ENVIRON_USER, record_identity_lookup

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identity:
    """A caller as the hub knows them."""

    name: str
    admin: bool = False
    groups: frozenset[str] = field(default_factory=frozenset)


def token_from_header(value: str | None) -> str | None:
    """The token of an ``Authorization: token|Bearer <t>`` header, or None."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() not in ("token", "bearer") or not token.strip():
        return None
    return token.strip()


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class HubUnreachable(HubUnavailable):
    """The hub gave no answer (down, timing out, an error of its own), as opposed to
    answering no."""


class HubIdentity:
    """Looks tokens up at ``{hub_api_url}/user`` with a small TTL cache.

    Refusals are cached too (for ``failure_ttl``), so a bad token cannot make
    every request cost a round trip to the hub.  While the hub gives no answer (down,
    restarting, failing), a token keeps the hub's last answer for it if the hub gave
    one within ``outage_grace`` seconds, so a hub restart does not stop a class at a
    deadline.  A hub that let a look-up time out is asked again after ``failure_ttl``
    by one request at a time, so requests do not each wait ``timeout`` for it.
    """

    def __init__(
        self,
        hub_api_url: str,
        service_name: str | None = None,
        timeout: float = 5.0,
        ttl: float = 60.0,
        failure_ttl: float = 2.0,
        max_entries: int = 10_000,
        service_token: str | None = None,
        outage_grace: float = 300.0,
    ) -> None:
        self.api_url = hub_api_url.rstrip("/")
        self.url = self.api_url + "/user"
        self.users_url = self.api_url + "/users/"
        self.service_name = service_name
        self.service_token = service_token
        self.timeout = timeout
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self.outage_grace = outage_grace
        self.max_entries = max_entries
        # key -> (expires, answer, when the hub was asked); times from time.monotonic().
        self._cache: OrderedDict[str, tuple[float, Identity | ExchangeError, float]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()
        self._session = requests.Session()
        # Until when requests do not ask the hub: it let a look-up time out, or one
        # request is trying it again.  0: ask.
        self._silent_until = 0.0
        self.hits = 0
        self.misses = 0

    def identify(self, token: str) -> Identity:
        key = _token_key(token)
        try:
            return self._cached(key, lambda: self._ask_hub(token))
        except HubUnreachable:
            last = self._last_answer(key, since=time.monotonic() - self.outage_grace)
            if last is None:
                raise
            return self._give(last)

    def current(self, identity: Identity) -> Identity:
        """A browser session's identity with the admin flag and groups the hub has for
        that user now, asked with the service's own token (``read:users``); a user the
        hub no longer has is refused.  Without a service token, ``identity`` as it is."""
        if self.service_token is None:
            return identity
        key = "user " + identity.name
        try:
            return self._cached(key, lambda: self._ask_for_user(identity.name))
        except HubUnreachable:
            # Browser users are not locked out while the hub restarts: the last answer
            # the hub gave, else the cookie's (login time's) rights, until it is back.
            last = self._last_answer(key, since=float("-inf"))
            if last is None:
                record_identity_lookup("outage")
                return identity
            return self._give(last)

    def _cached(self, key: str, ask: Callable[[], Identity]) -> Identity:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached[0] > now:
                self.hits += 1
            else:
                self.misses += 1
                cached = None
        record_identity_lookup("hit" if cached is not None else "miss")
        if cached is not None:
            return self._give(cached[1])
        try:
            answer: Identity | ExchangeError = ask()
        except (Unauthenticated, Forbidden) as refusal:
            answer = refusal
        self._remember(key, answer, asked=now)
        return self._give(answer)

    def _last_answer(self, key: str, since: float) -> Identity | ExchangeError | None:
        """The hub's last answer for ``key`` if it was asked for after ``since``, for
        while the hub gives none."""
        with self._lock:
            held = self._cache.get(key)
        if held is None or held[2] < since:
            return None
        record_identity_lookup("outage")
        return held[1]

    @staticmethod
    def _give(answer: Identity | ExchangeError) -> Identity:
        if isinstance(answer, ExchangeError):
            raise type(answer)(answer.message)
        return answer

    def _remember(self, key: str, answer: Identity | ExchangeError, asked: float) -> None:
        """Keep the hub's ``answer`` for its TTL, counted from when it was ``asked``,
        unless an answer asked for later is there (a slow look-up overtaken by a quick
        one): no request sees what the hub said longer ago than the TTL (but see
        ``outage_grace``)."""
        ttl = self.ttl if isinstance(answer, Identity) else self.failure_ttl
        with self._lock:
            held = self._cache.get(key)
            if held is not None and held[2] > asked:
                return
            self._cache[key] = (asked + ttl, answer, asked)
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)

    def _ask_hub(self, token: str) -> Identity:
        response = self._get(self.url, token)
        if response.status_code in (401, 403):
            raise Unauthenticated("invalid, expired or revoked JupyterHub token")
        model = self._model(self.url, response)
        self._check_scopes(model)
        return self._identity(model)

    def _ask_for_user(self, name: str) -> Identity:
        url = self.users_url + quote(name, safe="")
        response = self._get(url, self.service_token or "")
        if response.status_code == 404:  # also what a token that may not see the user gets
            raise Unauthenticated(
                f"JupyterHub has no user {name!r} any more (or the service's token may not "
                "read it: it needs the read:users scope); log in again"
            )
        if response.status_code in (401, 403):
            raise HubUnavailable(
                f"JupyterHub refused the service's own look-up of user {name!r} (HTTP "
                f"{response.status_code}): the service's token needs the read:users scope"
            )
        return self._identity(self._model(url, response))

    def _get(self, url: str, token: str) -> requests.Response:
        now = time.monotonic()
        with self._lock:
            if now < self._silent_until:
                raise HubUnreachable(self._silent_message())
            if self._silent_until:  # the pause is over: this request alone tries the hub
                self._silent_until = now + self.timeout + self.failure_ttl
        try:
            response = self._session.get(
                url, headers={"Authorization": f"token {token}"}, timeout=self.timeout
            )
        except requests.Timeout:
            log.warning("JupyterHub at %s did not answer within %s s", url, self.timeout)
            self._silent_until = time.monotonic() + self.failure_ttl
            raise HubUnreachable(self._silent_message()) from None
        except requests.RequestException as exc:
            self._silent_until = 0.0  # it fails fast: asking costs requests nothing
            log.warning("JupyterHub at %s unreachable: %s", url, type(exc).__name__)
            raise HubUnreachable(
                f"JupyterHub API at {url} is unreachable; is the hub running?"
            ) from None
        self._silent_until = 0.0
        return response

    def _silent_message(self) -> str:
        return (
            f"JupyterHub API at {self.api_url} did not answer within {self.timeout:g} s; "
            "is the hub running?"
        )

    @staticmethod
    def _model(url: str, response: requests.Response) -> dict:
        if response.status_code != 200:
            raise HubUnreachable(f"JupyterHub API at {url} answered HTTP {response.status_code}")
        try:
            model = response.json()
            model["name"]  # noqa: B018 - every answer names its user
        except (ValueError, KeyError, TypeError):
            raise HubUnavailable(f"JupyterHub API at {url} sent an unexpected answer") from None
        return model

    @staticmethod
    def _identity(model: dict) -> Identity:
        name = model["name"]
        if model.get("kind", "user") != "user":
            # A service token identifies a service, not a person with course roles.
            return Identity(name=f"service:{name}", admin=False)
        return Identity(
            name=name, admin=bool(model.get("admin")), groups=frozenset(model.get("groups") or ())
        )

    def _check_scopes(self, model: dict) -> None:
        """Refuse tokens not issued for this service (hubs before 2.0 send no scopes)."""
        scopes = model.get("scopes")
        if self.service_name is None or scopes is None:
            return
        wanted = f"access:services!service={self.service_name}"
        if "access:services" not in scopes and wanted not in scopes:
            raise Forbidden(
                f"this JupyterHub token lacks the scope {wanted!r}, so it may not use the "
                f"{self.service_name!r} service. Notebook servers get it through "
                "c.Spawner.server_token_scopes; a token you make yourself must be requested "
                "with that scope, and your hub roles must grant it."
            )


class DevIdentity:
    """INSECURE: the token is the user name.  For the demo and tests only."""

    def identify(self, token: str) -> Identity:
        name = token.strip()
        if not name or len(name) > 255 or any(ch in name for ch in "\x00/\\\n\r\t"):
            raise Unauthenticated("dev identity: the token must be a plain user name")
        return Identity(name=name)

    def current(self, identity: Identity) -> Identity:
        return identity


SESSION_COOKIE = "ngshare-gql-session"
CSRF_COOKIE = "csrftoken"  # the name Strawberry's GraphiQL page reads, too
CSRF_HEADER = "X-CSRFToken"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _session_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="ngshare-gql browser session")


def session_cookie_value(identity: Identity, csrf: str) -> str:
    """The signed (not encrypted) session cookie: identity and CSRF secret, no token."""
    return _session_serializer().dumps(
        {
            "name": identity.name,
            "admin": identity.admin,
            "groups": sorted(identity.groups),
            "csrf": csrf,
        }
    )


def read_session(request: Request) -> tuple[Identity, str] | None:
    """The identity and CSRF secret of a valid, unexpired session cookie, else None."""
    value = request.cookies.get(SESSION_COOKIE)
    if not value:
        return None
    max_age = current_app.extensions["ngshare"].settings.session_lifetime
    try:
        data = _session_serializer().loads(value, max_age=max_age)
        identity = Identity(
            name=str(data["name"]), admin=bool(data["admin"]), groups=frozenset(data["groups"])
        )
        return identity, str(data["csrf"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


# JupyterHub's tokens are 32 characters; anything far longer is no token of a hub.
MAX_TOKEN_LENGTH = 4096


def authenticate(request: Request) -> Identity:
    """The identity behind a request's token or browser session, else an error.

    A session cookie alone authorizes safe (reading) methods; anything else needs
    the CSRF header too.  GET never runs mutations (Strawberry refuses them).
    """
    token = token_from_header(request.headers.get("Authorization"))
    if token is not None and len(token) > MAX_TOKEN_LENGTH:
        # Not worth asking the hub, whose refusal of an oversized header would look
        # like an outage (HUB_UNAVAILABLE, retried) instead of a bad token.
        raise Unauthenticated("invalid token")
    if token is not None:
        identity = current_app.extensions["ngshare"].identity.identify(token)
    else:
        session = read_session(request)
        if session is None:
            raise Unauthenticated(
                "no token: send 'Authorization: token <your JupyterHub API token>', "
                "or log in with a browser by opening the GraphiQL page"
            )
        identity, csrf = session
        identity = current_app.extensions["ngshare"].identity.current(identity)
        if request.method not in SAFE_METHODS and not hmac.compare_digest(
            request.headers.get(CSRF_HEADER, "").encode(), csrf.encode()
        ):
            raise Forbidden(
                f"a browser session may change data only with the {CSRF_HEADER} header "
                f"(GraphiQL sends it from the {CSRF_COOKIE} cookie); scripts should send "
                "'Authorization: token <your JupyterHub API token>'"
            )
    request.environ[ENVIRON_USER] = identity.name
    return identity
