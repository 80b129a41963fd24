"""Hub-mode identity without a real hub: scope checks, the browser session cookie and its
CSRF rule, GraphiQL pages and assets, /metrics and the access log.  (The same behaviour
against a real JupyterHub: tests/test_jupyterhub.py.)"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import time
from urllib.parse import parse_qs, urlparse

import pytest
from itsdangerous import URLSafeTimedSerializer

from ngshare_gql import config, create_app
from ngshare_gql.auth import Identity, session_cookie_value
from tests.conftest import reset_database
from tests.fakehub import FakeHub

PREFIX = "/services/ngshare-gql/"
ACCESS = "access:services!service=ngshare-gql"
TOKENS = {
    "tok-ok": {"name": "ana", "groups": ["nbgrader-c1"], "scopes": [ACCESS]},
    "tok-all-services": {"name": "ben", "scopes": ["access:services"]},
    "tok-other-service": {"name": "cy", "scopes": ["access:services!service=other"]},
    "tok-old-hub": {"name": "dee"},  # hubs before 2.0 send no scopes
}


@pytest.fixture
def fakehub():
    with FakeHub(TOKENS) as hub:
        yield hub


def make_app(tmp_path, fakehub, **overrides):
    settings = config.Settings(
        database_url=f"sqlite:///{tmp_path}/t.db",
        hub_api_url=fakehub.api_url,
        service_name="ngshare-gql",
        service_prefix=PREFIX,
        oauth_callback_url=PREFIX + "oauth_callback",
        oauth_client_id="service-ngshare-gql",
        secret_key="test-key",
        **overrides,
    )
    app = create_app(settings)
    app.instance_path = str(tmp_path)
    reset_database(app)
    return app


@pytest.fixture
def app(tmp_path, fakehub):
    return make_app(tmp_path, fakehub)


def post(client, query: str, **kwargs):
    # buffered: the response is read to its end and closed, as a WSGI server does.
    return client.post(
        PREFIX + "graphql", json={"query": query}, buffered=True, **kwargs
    ).get_json()


def code(body) -> str:
    return body["errors"][0]["extensions"]["code"]


def login(app, client, name="ana", groups=("nbgrader-c1",)) -> str:
    """Put a session cookie in the client as the OAuth callback would; its CSRF secret."""
    with app.test_request_context():
        value = session_cookie_value(Identity(name, groups=frozenset(groups)), "secret-csrf")
    client.set_cookie("ngshare-gql-session", value, path=PREFIX)
    return "secret-csrf"


# --- tokens and scopes ------------------------------------------------------------------


@pytest.mark.parametrize("token", ["tok-ok", "tok-all-services", "tok-old-hub"])
def test_tokens_with_the_access_scope_or_from_old_hubs_are_accepted(app, token):
    body = post(app.test_client(), "{ me { name } }", headers={"Authorization": f"token {token}"})
    assert body["data"]["me"]["name"] == TOKENS[token]["name"]


def test_token_for_another_service_is_refused_and_the_refusal_cached(app, fakehub):
    client = app.test_client()
    for _ in range(3):
        body = post(client, "{ me { name } }", headers={"Authorization": "token tok-other-service"})
        assert code(body) == "FORBIDDEN"
        assert ACCESS in body["errors"][0]["message"]
    assert fakehub.lookups == 1


# --- the browser session ----------------------------------------------------------------


def test_session_cookie_reads_without_csrf_but_changes_need_the_header(app):
    client = app.test_client()
    csrf = login(app, client)
    got = client.get(PREFIX + "graphql", query_string={"query": "{ me { name } }"}).get_json()
    assert got["data"]["me"]["name"] == "ana"
    assert code(post(client, "{ me { name } }")) == "FORBIDDEN"
    assert code(post(client, "{ me { name } }", headers={"X-CSRFToken": "wrong"})) == "FORBIDDEN"
    ok = post(client, "{ me { name roles { courseId } } }", headers={"X-CSRFToken": csrf})
    assert ok["data"]["me"] == {"name": "ana", "roles": [{"courseId": "c1"}]}


def test_cookie_authenticated_upload_without_csrf_header_is_refused(app):
    """A cross-site form can send multipart bodies with cookies: it must not get in."""
    client = app.test_client()
    login(app, client, groups=("formgrade-c1",))
    query = """mutation($files: [FileInput!]!) {
      releaseAssignment(courseId: "c1", name: "a", files: $files) { name } }"""
    files = [{"path": "x.txt", "sha256": hashlib.sha256(b"x").hexdigest(), "size": 1}]
    response = client.post(
        PREFIX + "graphql",
        data={
            "operations": json.dumps({"query": query, "variables": {"files": files}}),
            "map": json.dumps({"0": ["variables.files.0.content"]}),
            "0": (io.BytesIO(b"x"), "x.txt"),
        },
        content_type="multipart/form-data",
    )
    assert code(response.get_json()) == "FORBIDDEN"


def test_a_session_follows_the_hubs_admin_flag_and_groups_and_ends_with_the_user(
    tmp_path, fakehub
):
    """The cookie holds the groups of login time; the hub's current ones decide, asked
    with the service's own token and cached like a token's answer."""
    fakehub.tokens["tok-service"] = {"name": "ngshare-gql", "kind": "service"}
    fakehub.tokens["tok-prof"] = {"name": "prof", "groups": ["formgrade-c1"]}
    app = make_app(tmp_path, fakehub, oauth_client_secret="tok-service", identity_cache_ttl=1)
    client = app.test_client()
    csrf = login(app, client, "prof", groups=())  # logged in before joining the group

    def ask(query: str) -> dict:
        return post(client, query, headers={"X-CSRFToken": csrf})

    roles = '{ course(id: "c1") { myRoles } }'
    assert ask(roles)["data"]["course"]["myRoles"] == ["INSTRUCTOR"]
    fakehub.tokens["tok-prof"]["groups"] = []
    assert ask(roles)["data"]["course"]["myRoles"] == ["INSTRUCTOR"]  # cached
    time.sleep(1.1)
    assert code(ask(roles)) == "FORBIDDEN"
    fakehub.tokens["tok-prof"]["admin"] = True
    time.sleep(1.1)
    assert ask("{ me { admin } }")["data"]["me"]["admin"] is True
    # While the hub is down, the session keeps the hub's last answer, not the cookie's.
    fakehub.down()
    time.sleep(1.1)
    assert ask("{ me { admin } }")["data"]["me"]["admin"] is True
    fakehub.up()
    del fakehub.tokens["tok-prof"]
    time.sleep(1.1)
    gone = ask("{ me { name } }")
    assert code(gone) == "UNAUTHENTICATED" and "no user 'prof'" in gone["errors"][0]["message"]
    # A user the hub deleted does not get the cookie's rights back while the hub is down.
    fakehub.down()
    time.sleep(2.1)  # the refusal's own TTL is 2 s
    assert code(ask("{ me { name } }")) == "UNAUTHENTICATED"


def test_a_session_the_hub_cannot_check(tmp_path, fakehub):
    """A service token the hub refuses is the operator's to fix, and says so; a hub that
    is down leaves a session the rights it logged in with, as before it was checked."""
    fakehub.tokens["tok-not-a-service"] = {"name": "someone"}
    app = make_app(tmp_path, fakehub, oauth_client_secret="tok-not-a-service")
    client = app.test_client()
    csrf = login(app, client, "ana")
    refused = post(client, "{ me { name } }", headers={"X-CSRFToken": csrf})
    assert code(refused) == "HUB_UNAVAILABLE"
    assert "needs the read:users scope" in refused["errors"][0]["message"]
    fakehub.down()
    app = make_app(tmp_path, fakehub, oauth_client_secret="tok-not-a-service")
    client = app.test_client()
    csrf = login(app, client, "ana", groups=("nbgrader-c1",))
    me = post(client, "{ me { name roles { courseId } } }", headers={"X-CSRFToken": csrf})
    assert me["data"]["me"] == {"name": "ana", "roles": [{"courseId": "c1"}]}


def test_tampered_or_expired_session_is_no_session(tmp_path, fakehub):
    app = make_app(tmp_path, fakehub, session_lifetime=1)
    client = app.test_client()
    csrf = login(app, client)
    cookie = client.get_cookie("ngshare-gql-session", path=PREFIX).value
    payload = URLSafeTimedSerializer("x").loads_unsafe(cookie)[1]
    assert payload == {"name": "ana", "admin": False, "groups": ["nbgrader-c1"], "csrf": csrf}
    forged = URLSafeTimedSerializer("not-our-key", salt="ngshare-gql browser session").dumps(
        {**payload, "admin": True}
    )
    client.set_cookie("ngshare-gql-session", forged, path=PREFIX)
    assert code(post(client, "{ me { admin } }", headers={"X-CSRFToken": csrf})) == (
        "UNAUTHENTICATED"
    )
    client.set_cookie("ngshare-gql-session", cookie, path=PREFIX)
    time.sleep(2.1)
    assert code(post(client, "{ me { name } }", headers={"X-CSRFToken": csrf})) == (
        "UNAUTHENTICATED"
    )


def test_browser_without_session_is_sent_to_the_hub_login(app):
    response = app.test_client().get(
        PREFIX + "graphql?q=%7B%20me%20%7D", headers={"Accept": "text/html"}
    )
    assert response.status_code == 302
    target = urlparse(response.headers["Location"])
    assert target.path == "/hub/api/oauth2/authorize"
    assert parse_qs(target.query)["redirect_uri"] == [PREFIX + "oauth_callback"]
    state = response.headers["Set-Cookie"]
    assert "ngshare-gql-oauth-state=" in state and "HttpOnly" in state
    assert f"Path={PREFIX}" in state


@pytest.mark.parametrize("forwarded", ["https", "https,http"])
def test_cookies_are_secure_behind_https(app, forwarded):
    response = app.test_client().get(
        PREFIX + "oauth_login", headers={"X-Forwarded-Proto": forwarded}
    )
    assert "Secure" in response.headers["Set-Cookie"]


@pytest.mark.parametrize(
    "next_url",
    ["https://evil.example/", "//evil.example/x", "/hub/admin", PREFIX + "../../hub/admin"],
)
def test_login_never_returns_to_another_site_or_path(app, next_url):
    client = app.test_client()
    response = client.get(PREFIX + "oauth_login", query_string={"next": next_url})
    state = client.get_cookie("ngshare-gql-oauth-state", path=PREFIX).value
    with app.test_request_context():
        remembered = URLSafeTimedSerializer(app.secret_key, salt="ngshare-gql oauth state").loads(
            state
        )
    assert response.status_code == 302
    assert remembered["next"] == PREFIX + "graphql"


def test_callback_with_a_bad_state_or_a_refused_code_sets_no_session(app):
    client = app.test_client()
    assert client.get(PREFIX + "oauth_callback?code=c&state=s").status_code == 400
    # A genuine state, but the hub (here: none at that URL) refuses the code.
    client.get(PREFIX + "oauth_login")
    state = client.get_cookie("ngshare-gql-oauth-state", path=PREFIX).value
    issued = URLSafeTimedSerializer(app.secret_key, salt="ngshare-gql oauth state").loads(state)
    response = client.get(
        PREFIX + "oauth_callback", query_string={"code": "c", "state": issued["state"]}
    )
    assert response.status_code in (401, 503)
    assert client.get_cookie("ngshare-gql-session", path=PREFIX) is None


# --- GraphiQL ---------------------------------------------------------------------------


def test_graphiql_from_local_assets_when_configured(tmp_path, fakehub):
    assets = tmp_path / "graphiql"
    assets.mkdir()
    (assets / "graphiql.min.js").write_text("/* graphiql */")
    app = make_app(tmp_path, fakehub, graphiql_assets=str(assets))
    client = app.test_client()
    login(app, client)
    page = client.get(PREFIX + "graphql", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert f'src="{PREFIX}static/graphiql/graphiql.min.js"' in page
    assert "unpkg.com" not in page and "X-CSRFToken" in page
    asset = client.get(PREFIX + "static/graphiql/graphiql.min.js")
    assert asset.status_code == 200 and asset.data == b"/* graphiql */"
    assert client.get(PREFIX + "static/graphiql/../t.db").status_code == 404


def test_graphiql_falls_back_to_the_cdn_page(app):
    client = app.test_client()
    login(app, client)
    page = client.get(PREFIX + "graphql", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "unpkg.com/graphiql" in page
    assert client.get(PREFIX + "static/graphiql/graphiql.min.js").status_code == 404


def test_settings_derive_the_cookie_key_and_choose_assets():
    settings = config.from_environ(
        {"JUPYTERHUB_API_TOKEN": "hub-token", "NGSHARE_GRAPHIQL_ASSETS": "cdn"}
    )
    assert settings.secret_key and "hub-token" not in settings.secret_key
    assert settings.graphiql_assets is None
    assert "hub-token" not in repr(settings)
    explicit = config.from_environ(
        {"NGSHARE_SECRET_KEY": "k", "JUPYTERHUB_SERVICE_PREFIX": "/s/x/"}
    )
    assert explicit.secret_key == "k"
    assert explicit.oauth_callback_url == "/s/x/oauth_callback"


# --- metrics and the access log ---------------------------------------------------------


def test_metrics_and_one_json_log_line_per_request_without_tokens(app, caplog):
    client = app.test_client()
    caplog.set_level(logging.INFO, logger="ngshare_gql.access")
    logger = logging.getLogger("ngshare_gql.access")
    logger.addHandler(caplog.handler)
    try:
        for _ in range(2):
            post(client, "query Mine { me { name } }", headers={"Authorization": "token tok-ok"})
        post(client, "{ me { name } }", headers={"Authorization": "token tok-other-service"})
        post(client, "{ nope }", headers={"Authorization": "token tok-ok"})
        client.get(PREFIX + "oauth_callback?code=very-secret-code&state=x", buffered=True)
    finally:
        logger.removeHandler(caplog.handler)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ngshare_gql.access"]
    assert [(e["user"], e["operation"], e["outcome"], e["status"]) for e in lines] == [
        ("ana", "query:me", "ok", 200),
        ("ana", "query:me", "ok", 200),
        (None, "query:me", "FORBIDDEN", 200),
        (None, "invalid", "BAD_USER_INPUT", 200),
        (None, "oauth.callback", "http_400", 400),
    ]
    assert lines[0]["operation_name"] == "Mine" and lines[0]["bytes_in"] > 0
    assert all(e["bytes_out"] > 0 and e["duration_ms"] >= 0 for e in lines)
    text = caplog.text
    assert "tok-ok" not in text and "very-secret-code" not in text

    metrics = client.get(PREFIX + "metrics")
    assert metrics.content_type.startswith("text/plain")
    body = metrics.get_data(as_text=True)
    assert re.search(r'ngshare_requests_total\{operation="query:me",outcome="FORBIDDEN"\} \d', body)
    assert re.search(r'ngshare_identity_cache_total\{result="hit"\} \d', body)
    assert "ngshare_request_duration_seconds_bucket" in body
    assert re.search(r'ngshare_body_bytes_total\{direction="out"\} \d', body)


def test_metrics_can_require_a_bearer_token(tmp_path, fakehub):
    client = make_app(tmp_path, fakehub, metrics_token="scrape-me").test_client()
    assert client.get(PREFIX + "metrics").status_code == 401
    wrong = client.get(PREFIX + "metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = client.get(PREFIX + "metrics", headers={"Authorization": "Bearer scrape-me"})
    assert ok.status_code == 200 and b"ngshare_requests_total" in ok.data
