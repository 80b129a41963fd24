"""Identity from the hub on its own: caching under a hash, TTLs, and what each hub answer means."""

from __future__ import annotations

import time

import pytest

from ngshare_gql.auth import DevIdentity, HubIdentity, token_from_header
from ngshare_gql.errors import HubUnavailable, Unauthenticated
from tests.fakehub import FakeHub


@pytest.fixture
def hub():
    with FakeHub(
        {
            "tok-prof": {"name": "prof", "admin": True, "groups": ["formgrade-cs1"]},
            "tok-svc": {"name": "grader", "kind": "service"},
        }
    ) as hub:
        yield hub


def test_identity_comes_from_the_hub_and_is_cached_under_a_hash(hub):
    ids = HubIdentity(hub.api_url, ttl=60)
    first = ids.identify("tok-prof")
    assert (first.name, first.admin, first.groups) == ("prof", True, frozenset({"formgrade-cs1"}))
    assert ids.identify("tok-prof") == first
    assert hub.lookups == 1 and (ids.hits, ids.misses) == (1, 1)
    assert all("tok-prof" not in key for key in ids._cache)  # keyed by a hash, not the token


def test_answers_expire_after_their_ttl(hub):
    ids = HubIdentity(hub.api_url, ttl=0.2, failure_ttl=0.2)
    ids.identify("tok-prof")
    with pytest.raises(Unauthenticated):
        ids.identify("nope")
    with pytest.raises(Unauthenticated):
        ids.identify("nope")  # the refusal is cached: no second lookup
    assert hub.lookups == 2
    time.sleep(0.3)
    del hub.tokens["tok-prof"]  # revoked at the hub
    with pytest.raises(Unauthenticated):
        ids.identify("tok-prof")
    assert hub.lookups == 3


def test_a_hub_that_is_down_or_failing_is_named_in_the_error(hub):
    ids = HubIdentity(hub.api_url, timeout=0.5)
    hub.fail(502)
    with pytest.raises(HubUnavailable, match="HTTP 502"):
        ids.identify("tok-prof")
    hub.fail(None)
    hub.slow(1.5)
    with pytest.raises(HubUnavailable, match="unreachable"):
        ids.identify("tok-prof")
    hub.slow(0)
    hub.down()
    with pytest.raises(HubUnavailable, match=hub.api_url):
        ids.identify("tok-prof")
    hub.up()
    assert ids.identify("tok-prof").name == "prof"  # recovers by itself, failures not cached


def test_service_tokens_are_not_people(hub):
    ident = HubIdentity(hub.api_url).identify("tok-svc")
    assert ident.name == "service:grader" and not ident.admin and not ident.groups


@pytest.mark.parametrize(
    ("header", "token"),
    [("token abc", "abc"), ("Bearer abc", "abc"), ("TOKEN  abc ", "abc"), ("Basic abc", None),
     ("token", None), ("", None), (None, None), ("token   ", None)],
)  # fmt: skip
def test_token_from_header(header, token):
    assert token_from_header(header) == token


def test_dev_identity_takes_plain_names_only():
    assert DevIdentity().identify("amy").name == "amy"
    for bad in ("", "a/b", "x\ny", "x" * 300):
        with pytest.raises(Unauthenticated):
            DevIdentity().identify(bad)
