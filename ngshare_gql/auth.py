"""Identity: who is calling, asked of JupyterHub with the caller's own token.

A request carries ``Authorization: token <t>`` (or ``Bearer <t>``), the API
token of the user's notebook server.  The hub's ``GET /user`` endpoint, called
*with that token*, answers with the user's name, admin flag and groups.  Answers
are cached for a short time under a hash of the token; the token itself is never
stored or logged.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import requests
from flask import Request, current_app

from ngshare_gql.errors import HubUnavailable, Unauthenticated

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


class HubIdentity:
    """Looks tokens up at ``{hub_api_url}/user`` with a small TTL cache."""

    def __init__(
        self,
        hub_api_url: str,
        timeout: float = 5.0,
        ttl: float = 60.0,
        failure_ttl: float = 2.0,
        max_entries: int = 10_000,
    ) -> None:
        self.url = hub_api_url.rstrip("/") + "/user"
        self.timeout = timeout
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self.max_entries = max_entries
        self._cache: OrderedDict[str, tuple[float, Identity | None]] = OrderedDict()
        self._lock = threading.Lock()
        self._session = requests.Session()
        self.hits = 0
        self.misses = 0

    def identify(self, token: str) -> Identity:
        key = _token_key(token)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached[0] > now:
                self.hits += 1
                if cached[1] is None:
                    raise Unauthenticated("invalid or expired token")
                return cached[1]
            self.misses += 1
        identity = self._ask_hub(token)
        self._remember(key, identity, self.ttl if identity else self.failure_ttl)
        if identity is None:
            raise Unauthenticated("invalid or expired token")
        return identity

    def _remember(self, key: str, identity: Identity | None, ttl: float) -> None:
        with self._lock:
            self._cache[key] = (time.monotonic() + ttl, identity)
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)

    def _ask_hub(self, token: str) -> Identity | None:
        try:
            response = self._session.get(
                self.url, headers={"Authorization": f"token {token}"}, timeout=self.timeout
            )
        except requests.RequestException as exc:
            log.warning("JupyterHub at %s unreachable: %s", self.url, type(exc).__name__)
            raise HubUnavailable(
                f"JupyterHub API at {self.url} is unreachable; is the hub running?"
            ) from None
        if response.status_code in (401, 403):
            return None
        if response.status_code >= 500 or response.status_code != 200:
            raise HubUnavailable(
                f"JupyterHub API at {self.url} answered HTTP {response.status_code}"
            )
        try:
            model = response.json()
            name = model["name"]
        except (ValueError, KeyError, TypeError):
            raise HubUnavailable(
                f"JupyterHub API at {self.url} sent an unexpected answer"
            ) from None
        if model.get("kind", "user") != "user":
            # A service token identifies a service, not a person with course roles.
            return Identity(name=f"service:{name}", admin=False)
        return Identity(
            name=name, admin=bool(model.get("admin")), groups=frozenset(model.get("groups") or ())
        )


class DevIdentity:
    """INSECURE: the token is the user name.  For the demo and tests only."""

    def identify(self, token: str) -> Identity:
        name = token.strip()
        if not name or len(name) > 255 or any(ch in name for ch in "\x00/\\\n\r\t"):
            raise Unauthenticated("dev identity: the token must be a plain user name")
        return Identity(name=name)


def authenticate(request: Request) -> Identity:
    """The identity behind a request's token, or :class:`Unauthenticated`."""
    token = token_from_header(request.headers.get("Authorization"))
    if token is None:
        raise Unauthenticated("no token: send 'Authorization: token <your JupyterHub API token>'")
    return current_app.extensions["ngshare"].identity.identify(token)
