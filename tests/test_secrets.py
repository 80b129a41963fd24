"""Secrets: no token in any log line, cookie flags right, nothing of the server's
insides (tracebacks, paths, driver messages) in what a client sees."""

from __future__ import annotations

import logging
import os
import secrets
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from ngshare_gql import create_app
from ngshare_gql.client import Client, ClientError, LocalFile
from ngshare_gql.config import Settings
from ngshare_gql.graphql.errors import MASKED
from tests.conftest import reset_database
from tests.fakehub import FakeHub
from tests.servers import create_course, gunicorn_server, service_env

# Secret-looking tokens, so a leak can't hide behind a common word.
ADMIN, INS, S1 = (secrets.token_hex(20) for _ in range(3))
UNKNOWN = secrets.token_hex(20)
OAUTH_CODE, OAUTH_TOKEN, SERVICE_TOKEN = (secrets.token_hex(20) for _ in range(3))
HUB_USERS = {ADMIN: {"name": "admin", "admin": True}, INS: {"name": "ins"}, S1: {"name": "s1"},
             OAUTH_TOKEN: {"name": "s1"}}
ALL_SECRETS = (ADMIN, INS, S1, UNKNOWN, OAUTH_CODE, OAUTH_TOKEN, SERVICE_TOKEN)


def server_internals(text: str) -> list[str]:
    """What a client-visible text must not contain."""
    markers = ["Traceback", 'File "', os.getcwd(), "site-packages", "sqlalchemy", "psycopg",
               "sqlite3", "werkzeug"]
    return [m for m in markers if m in text]


@pytest.mark.slow
def test_no_token_in_any_log_line(tmp_path):
    log = tmp_path / "service.log"
    with FakeHub(HUB_USERS) as hub:
        env = service_env(
            tmp_path, NGSHARE_AUTH="hub", JUPYTERHUB_API_URL=hub.api_url,
            JUPYTERHUB_API_TOKEN=SERVICE_TOKEN, NGSHARE_HUB_TIMEOUT="0.5",
        )
        with gunicorn_server(env, workers=1, log_path=str(log)) as url:
            seen = exercise(url, hub, tmp_path)
    text = log.read_text(errors="replace")
    assert text.count("\n") > 20, "the service logged too little to prove anything"
    for secret in ALL_SECRETS:
        assert secret not in text, f"a token is in the log: {secret[:6]}..."
    assert "Authorization" not in text
    for body in seen:
        assert not server_internals(body), body[:500]
        for secret in ALL_SECRETS:
            assert secret not in body, "an error message repeats a token"


def exercise(url: str, hub: FakeHub, tmp_path) -> list[str]:
    """Traffic of every kind, good and bad; returns the client-visible bodies of errors."""
    seen: list[str] = []
    admin, ins, s1 = Client(url, ADMIN), Client(url, INS), Client(url, S1)
    create_course(admin, "c1", ["ins"], ["s1"])
    path = tmp_path / "ps1.ipynb"
    path.write_bytes(b"{}")
    local = LocalFile.scan("ps1.ipynb", str(path))
    ins.execute_with_files(
        'mutation($f: [FileInput!]!) { releaseAssignment(courseId: "c1", name: "ps1", files: $f)'
        " { name } }", {"f": [local.as_input()]}, {"f.0.content": local})
    got = s1.execute_with_files(
        'mutation($f: [FileInput!]!) { submitAssignment(courseId: "c1", assignment: "ps1", '
        "files: $f) { files { url sha256 } } }", {"f": [local.as_input()]}, {"f.0.content": local})
    s1.download(got["submitAssignment"]["files"][0]["url"], str(tmp_path / "back"),
                local.sha256)

    def post(headers: dict, **kwargs) -> None:
        response = requests.post(url + "graphql", headers=headers, timeout=30, **kwargs)
        if response.status_code >= 400 or "errors" in response.text:
            seen.append(response.text)

    query = {"query": "{ me { name } }"}
    post({"Authorization": f"Bearer {S1}"}, json=query)
    post({"Authorization": f"token {UNKNOWN}"}, json=query)
    post({"Authorization": f"Basic {UNKNOWN}"}, json=query)
    post({"Authorization": UNKNOWN}, json=query)
    post({}, json=query, params={"token": UNKNOWN})
    # A token pasted where an id goes: the client gets its own input back, the log nothing.
    requests.post(url + "graphql", headers={"Authorization": f"token {INS}"}, timeout=30, json={
        "query": "query($c: String!) { course(id: $c) { id } }", "variables": {"c": UNKNOWN}})
    post({"Authorization": f"token {INS}"}, data=b"{broken", params={"token": UNKNOWN})
    for response in (
        requests.get(url + "files/1", params={"token": UNKNOWN}, timeout=30),
        requests.get(url + "files/1", headers={"Authorization": f"token {UNKNOWN}"}, timeout=30),
        requests.get(url + "files/abc", timeout=30),
        requests.get(url + "nowhere", timeout=30),
    ):
        seen.append(response.text)
    hub.fail(500)
    post({"Authorization": f"token {secrets.token_hex(20)}"}, json=query)
    hub.fail(None)
    hub.down()
    with pytest.raises(ClientError):
        Client(url, UNKNOWN).execute("{ me { name } }")
    hub.up()

    # The browser login: the code and the token the hub trades it for are secrets too.
    hub.codes[OAUTH_CODE] = OAUTH_TOKEN
    browser = requests.Session()
    start = browser.get(url + "graphql", headers={"Accept": "text/html"}, allow_redirects=False)
    state = parse_qs(urlparse(start.headers["Location"]).query)["state"][0]
    done = browser.get(url + "oauth_callback", params={"code": OAUTH_CODE, "state": state},
                       allow_redirects=False)
    assert done.status_code == 302, done.text
    assert OAUTH_TOKEN not in done.headers.get("Set-Cookie", "")
    browser.get(url + "oauth_callback", params={"code": UNKNOWN, "state": state})
    return seen


# --- cookies ---------------------------------------------------------------------------


@pytest.fixture
def hub_app(tmp_path):
    with FakeHub(HUB_USERS) as hub:
        settings = Settings(
            database_url=f"sqlite:///{tmp_path}/t.db", auth="hub", hub_api_url=hub.api_url,
            oauth_client_secret=SERVICE_TOKEN, secret_key="k" * 32,
        )
        app = create_app(settings)
        app.instance_path = str(tmp_path)
        reset_database(app)
        yield app, hub


def cookies_of(response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in response.headers.getlist("Set-Cookie")}


@pytest.mark.parametrize("https", [True, False])
def test_login_cookie_flags(hub_app, https):
    app, hub = hub_app
    client = app.test_client()
    proto = {"X-Forwarded-Proto": "https"} if https else {}
    start = client.get("/graphql", headers={"Accept": "text/html", **proto})
    assert start.status_code == 302
    (state_cookie,) = cookies_of(start).values()
    state = parse_qs(urlparse(start.headers["Location"]).query)["state"][0]
    hub.codes[OAUTH_CODE] = OAUTH_TOKEN
    done = client.get(f"/oauth_callback?code={OAUTH_CODE}&state={state}", headers=proto)
    assert done.status_code == 302, done.data[:300]
    cookies = cookies_of(done)
    session, csrf = cookies["ngshare-gql-session"], cookies["csrftoken"]
    for header in (state_cookie, session, csrf):
        assert "SameSite=Lax" in header and "Path=/" in header
        assert ("Secure" in header) == https
    assert "HttpOnly" in state_cookie and "HttpOnly" in session
    assert "HttpOnly" not in csrf  # GraphiQL's script echoes it in X-CSRFToken, by design
    assert OAUTH_TOKEN not in session and OAUTH_CODE not in session
    # The code works once.
    again = client.get(f"/oauth_callback?code={OAUTH_CODE}&state={state}", headers=proto)
    assert "ngshare-gql-session" not in cookies_of(again)


# --- what clients see of unexpected errors -------------------------------------------------


def test_unexpected_errors_are_masked_for_clients_and_logged_in_full(
    app, as_user, caplog, monkeypatch
):
    from ngshare_gql.domain import courses

    def broken(caller):
        raise RuntimeError(f"disk full at {os.getcwd()}/instance/ngshare.db")

    monkeypatch.setattr(courses, "list_courses", broken)
    caplog.set_level(logging.ERROR)
    response = as_user("s1").raw("{ courses { id } }")
    error = response.get_json()["errors"][0]
    assert error["message"] == MASKED and error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert not server_internals(response.get_data(as_text=True))
    assert "disk full" in caplog.text and "Traceback" in caplog.text  # the operator sees it
    assert not app.debug  # no interactive debugger pages
    assert not app.config.get("DEBUG")


def test_error_pages_carry_no_internals(app, as_user):
    client = app.test_client()
    for response in (
        client.get("/nowhere"),
        client.delete("/graphql"),
        client.get("/files/1"),
        client.get("/files/1", headers={"Authorization": "token s1"}),
        client.put("/files/1"),
    ):
        assert response.status_code < 500
        assert not server_internals(response.get_data(as_text=True))
