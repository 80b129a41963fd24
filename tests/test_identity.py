"""Identity from the hub on its own: caching under a hash, TTLs, and what each hub answer means."""

from __future__ import annotations

import threading
import time

import pytest

from ngshare_gql.auth import DevIdentity, HubIdentity, Identity, token_from_header
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
    ids = HubIdentity(hub.api_url, timeout=0.5, failure_ttl=0)
    hub.fail(502)
    with pytest.raises(HubUnavailable, match="HTTP 502"):
        ids.identify("tok-prof")
    hub.fail(None)
    hub.slow(1.5)
    with pytest.raises(HubUnavailable, match="did not answer within 0.5 s"):
        ids.identify("tok-prof")
    hub.slow(0)
    hub.down()
    with pytest.raises(HubUnavailable, match=hub.api_url):
        ids.identify("tok-prof")
    hub.up()
    assert ids.identify("tok-prof").name == "prof"  # recovers by itself, failures not cached


def test_a_token_keeps_the_hubs_last_answer_while_the_hub_is_down(hub):
    ids = HubIdentity(hub.api_url, ttl=0.2, failure_ttl=0.2, outage_grace=1.5)
    prof = ids.identify("tok-prof")
    hub.tokens["tok-revoked"] = {"name": "ex"}
    assert ids.identify("tok-revoked").name == "ex"
    del hub.tokens["tok-revoked"]
    time.sleep(0.3)
    with pytest.raises(Unauthenticated):
        ids.identify("tok-revoked")
    hub.down()
    time.sleep(0.3)  # both answers have expired
    assert ids.identify("tok-prof") == prof
    with pytest.raises(Unauthenticated):
        ids.identify("tok-revoked")  # a refusal stays a refusal
    with pytest.raises(HubUnavailable, match="is the hub running"):
        ids.identify("tok-never-seen")
    time.sleep(1.3)  # the last answer is now older than the grace
    with pytest.raises(HubUnavailable, match=hub.api_url):
        ids.identify("tok-prof")
    asked = hub.lookups
    hub.up()
    assert ids.identify("tok-prof") == prof  # a hub that refused connections is asked at once
    assert hub.lookups == asked + 1


def test_a_failing_hub_and_no_grace_refuse_at_once(hub):
    ids = HubIdentity(hub.api_url, ttl=0.1, outage_grace=0)
    ids.identify("tok-prof")
    time.sleep(0.2)
    hub.fail(502)
    with pytest.raises(HubUnavailable, match="HTTP 502"):
        ids.identify("tok-prof")
    ids.outage_grace = 60
    assert ids.identify("tok-prof").name == "prof"  # a 502 is no answer either


def test_a_hub_that_times_out_is_tried_by_one_request_at_a_time(hub):
    ids = HubIdentity(hub.api_url, timeout=0.5, ttl=0.1, failure_ttl=1.0)
    prof = ids.identify("tok-prof")
    time.sleep(0.2)
    hub.slow(1.5)
    started = time.monotonic()
    assert ids.identify("tok-prof") == prof  # the last answer, after waiting the timeout
    assert 0.45 < time.monotonic() - started < 1.2
    started = time.monotonic()
    for _ in range(20):
        assert ids.identify("tok-prof") == prof
        with pytest.raises(HubUnavailable, match="did not answer within 0.5 s") as error:
            ids.identify("tok-never-seen")
    assert time.monotonic() - started < 0.4, "a request waited for the silent hub"
    assert str(error.value).startswith(f"JupyterHub API at {hub.api_url} did")

    time.sleep(1.0)  # the pause is over; the hub still hangs
    waited: list[float] = []

    def ask() -> None:
        began = time.monotonic()
        with pytest.raises(HubUnavailable):
            ids.identify("tok-never-seen")
        waited.append(time.monotonic() - began)

    askers = [threading.Thread(target=ask) for _ in range(6)]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join()
    assert sorted(waited)[-1] > 0.45 and sorted(waited)[-2] < 0.3, waited  # one tried

    hub.slow(0)
    time.sleep(1.6)  # the slow answers in flight arrive; the pause is over
    asked = hub.lookups
    assert ids.identify("tok-svc").name == "service:grader"
    with pytest.raises(Unauthenticated):
        ids.identify("tok-nope")  # asked at once: the hub's answer ended the pause
    assert hub.lookups == asked + 2


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


def test_a_slow_old_answer_never_replaces_a_newer_one(hub):
    """Two look-ups of one token overlap: the one asked first answers last.  The cache
    keeps the answer asked for later, so no request sees rights older than the TTL."""
    ids = HubIdentity(hub.api_url, ttl=60)
    asked, release = threading.Event(), threading.Event()
    answers = iter(["before", "after"])

    def ask_hub(token):
        groups = frozenset({next(answers)})
        if groups == {"before"}:
            asked.set()
            release.wait(10)
        return Identity("prof", groups=groups)

    ids._ask_hub = ask_hub
    slow = threading.Thread(target=ids.identify, args=("tok-prof",))
    slow.start()
    assert asked.wait(10)
    assert ids.identify("tok-prof").groups == {"after"}  # asked later, answered first
    release.set()
    slow.join(10)
    assert ids.identify("tok-prof").groups == {"after"}


def test_a_slow_old_answer_never_replaces_a_newer_refusal(hub):
    """A token revoked while an older look-up of it is still under way stays refused."""
    ids = HubIdentity(hub.api_url, ttl=60, failure_ttl=60)
    asked, release = threading.Event(), threading.Event()
    calls = iter(["granted", "revoked"])

    def ask_hub(token):
        if next(calls) == "revoked":
            raise Unauthenticated("invalid, expired or revoked JupyterHub token")
        asked.set()
        release.wait(10)
        return Identity("prof")

    ids._ask_hub = ask_hub
    slow = threading.Thread(target=ids.identify, args=("tok-prof",))
    slow.start()
    assert asked.wait(10)
    with pytest.raises(Unauthenticated):
        ids.identify("tok-prof")
    release.set()
    slow.join(10)
    with pytest.raises(Unauthenticated):
        ids.identify("tok-prof")
