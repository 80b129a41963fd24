"""The service inside a real JupyterHub: real tokens, groups, OAuth login, a spawned
notebook server's token, a headless browser, metrics and logs.

One hub (tests/servers.py ``jupyterhub_server``: loopback, dummy authenticator, simple
local spawner, our service under gunicorn gthread from deploy/jupyterhub_config.py)
serves the module, but for the test that kills its own.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import requests
from itsdangerous import URLSafeTimedSerializer

from ngshare_gql.client import Client, ClientError, LocalFile
from tests.servers import REPO, Hub, jupyterhub_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

COURSE = "hubc"
CACHE_TTL = 2.0
ASSETS = os.path.join(REPO, "ngshare_gql", "static", "graphiql")
ARTIFACTS = os.path.join(REPO, "test-artifacts")
TOKENS: list[str] = []  # every hub token a test used: none may reach a log

RELEASE = """mutation($c: String!, $n: String!, $files: [FileInput!]!) {
  releaseAssignment(courseId: $c, name: $n, files: $files) { name } }"""


@pytest.fixture(scope="session")
def hub(tmp_path_factory) -> Hub:
    workdir = tmp_path_factory.mktemp("jupyterhub")
    service_env = {
        "NGSHARE_DATABASE_URL": f"sqlite:///{workdir}/ngshare.db",
        "NGSHARE_BLOB_STORE": "filesystem",
        "NGSHARE_BLOB_DIR": str(workdir / "blobs"),
        "NGSHARE_IDENTITY_CACHE_TTL": str(CACHE_TTL),
        "NGSHARE_WORKERS": "2",
        "NGSHARE_THREADS": "4",
        "NGSHARE_GRAPHIQL_ASSETS": ASSETS,
    }
    spawner_cmd = [sys.executable, os.path.join(REPO, "tests", "hub_singleuser.py")]
    with jupyterhub_server(str(workdir), service_env, spawner_cmd=spawner_cmd) as running:
        running.home = str(workdir / "home")
        running.user("instructor", groups=(f"formgrade-{COURSE}",))
        running.user("student", groups=(f"nbgrader-{COURSE}", "chess-club"))
        running.user("outsider")
        yield running


def token(hub: Hub, user: str, scopes: list[str] | None = None) -> tuple[str, str]:
    value, token_id = hub.token(user, scopes)
    TOKENS.append(value)
    return value, token_id


def client(hub: Hub, user: str) -> Client:
    return Client(hub.service_url, token(hub, user)[0])


def error_of(call) -> ClientError:
    with pytest.raises(ClientError) as info:
        call()
    return info.value


def release(hub: Hub, tmp_path, name: str) -> None:
    path = tmp_path / "task.ipynb"
    path.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    file = LocalFile.scan("task.ipynb", str(path))
    client(hub, "instructor").execute_with_files(
        RELEASE,
        {"c": COURSE, "n": name, "files": [file.as_input()]},
        {"files.0.content": file},
    )


# --- tokens -----------------------------------------------------------------------------


def test_real_tokens_carry_identity_and_admin_flag(hub):
    me = client(hub, "hubadmin").execute("{ me { name admin } }")["me"]
    assert me == {"name": "hubadmin", "admin": True}
    me = client(hub, "outsider").execute("{ me { name admin roles { courseId } } }")["me"]
    assert me == {"name": "outsider", "admin": False, "roles": []}


def test_hub_groups_give_course_roles_without_a_roster(hub, tmp_path):
    assert client(hub, "instructor").execute("{ me { roles { courseId roles } } }")["me"][
        "roles"
    ] == [{"courseId": COURSE, "roles": ["INSTRUCTOR"]}]
    release(hub, tmp_path, "ps1")
    student = client(hub, "student")
    course = student.execute(
        '{ course(id: "hubc") { myRoles assignments { name files { path } } } }'
    )["course"]
    assert course["myRoles"] == ["STUDENT"]
    assert course["assignments"] == [{"name": "ps1", "files": [{"path": "task.ipynb"}]}]
    # Nobody was ever put on the service's roster: the groups alone did it.
    roster = client(hub, "instructor").execute('{ course(id: "hubc") { roster { user } } }')
    assert roster["course"]["roster"] == []
    # A student group gives no instructor rights, and no group gives no access.
    error = error_of(lambda: student.execute_with_files(
        RELEASE, {"c": COURSE, "n": "x", "files": []}, {}))
    assert error.code == "FORBIDDEN"
    outsider = client(hub, "outsider")
    assert error_of(lambda: outsider.execute('{ course(id: "hubc") { id } }')).code == "FORBIDDEN"


def test_token_without_the_access_scope_is_refused_clearly(hub):
    value, _ = token(hub, "student", scopes=["read:users:name!user"])
    error = error_of(lambda: Client(hub.service_url, value).execute("{ me { name } }"))
    assert error.code == "FORBIDDEN"
    assert "access:services!service=ngshare-gql" in error.message
    assert "server_token_scopes" in error.message
    # Downloads answer the same way.
    response = requests.get(
        hub.service_url + "files/1", headers={"Authorization": f"token {value}"}, timeout=10
    )
    assert response.status_code == 403
    assert "access:services!service=ngshare-gql" in response.json()["error"]
    bogus = error_of(lambda: Client(hub.service_url, "not-a-hub-token").execute("{ me { name } }"))
    assert bogus.code == "UNAUTHENTICATED"


def test_revoked_token_stops_working_within_the_cache_ttl(hub):
    value, token_id = token(hub, "student")
    service = Client(hub.service_url, value)
    assert service.execute("{ me { name } }")["me"]["name"] == "student"
    hub.call("DELETE", f"users/student/tokens/{token_id}")
    deadline = time.monotonic() + CACHE_TTL + 1.0
    while True:
        try:
            service.execute("{ me { name } }")
        except ClientError as exc:
            assert exc.code == "UNAUTHENTICATED"
            break
        assert time.monotonic() < deadline, "a revoked token still worked after the cache TTL"
        time.sleep(0.2)


def test_spawned_notebook_servers_token_works_with_client_and_nbgrader(hub, tmp_path):
    release(hub, tmp_path, "ps-nb")
    home = os.path.join(hub.home, "student")
    os.makedirs(home, exist_ok=True)
    with open(os.path.join(home, "nbgrader_config.py"), "w") as f:
        f.write(
            "from ngshare_gql.nbgrader import configure\n"
            "c = get_config()\n"
            "configure(c)\n"
            f"c.CourseDirectory.course_id = {COURSE!r}\n"
        )
    hub.call("POST", "users/student/server")
    try:
        deadline = time.monotonic() + 120
        while not hub.call("GET", "users/student").json()["servers"].get("", {}).get("ready"):
            assert time.monotonic() < deadline, "the notebook server did not start"
            time.sleep(0.5)
        with open(os.path.join(home, "probe.json")) as f:
            probe = json.load(f)
    finally:
        hub.call("DELETE", "users/student/server")
    assert "error" not in probe, probe
    assert probe["me"] == {"name": "student", "roles": [{"courseId": COURSE, "roles": ["STUDENT"]}]}
    listing = probe["nbgrader_list"]
    assert listing["returncode"] == 0, listing["log"]
    assert f"{COURSE} ps-nb" in listing["log"]


# --- browsers ---------------------------------------------------------------------------


class _Form(HTMLParser):
    """The hub login form's hidden fields (its _xsrf token)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("type") == "hidden" and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""


def hub_login(hub: Hub, session: requests.Session, user: str, start: str) -> requests.Response:
    """Follow the OAuth flow from ``start`` through the hub's login form, as a browser."""
    html = {"Accept": "text/html"}
    response = session.get(start, headers=html, timeout=30)
    assert urlparse(response.url).path == "/hub/login", response.url
    form = _Form()
    form.feed(response.text)
    return session.post(
        response.url,
        data={**form.fields, "username": user, "password": "x"},
        headers=html,
        timeout=30,
    )


def test_oauth_login_over_http_sets_a_signed_session_cookie_with_csrf(hub):
    session = requests.Session()
    first = session.get(
        hub.service_url + "graphql", headers={"Accept": "text/html"}, allow_redirects=False
    )
    assert first.status_code == 302
    target = urlparse(first.headers["Location"])
    assert target.path == "/hub/api/oauth2/authorize"
    query = parse_qs(target.query)
    assert query["client_id"] == ["service-ngshare-gql"]
    assert query["redirect_uri"] == ["/services/ngshare-gql/oauth_callback"]

    page = hub_login(hub, session, "student", hub.service_url + "graphql")
    assert page.status_code == 200
    assert urlparse(page.url).path == "/services/ngshare-gql/graphql"
    assert "static/graphiql/graphiql.min.js" in page.text  # the local assets, no CDN
    assert "unpkg.com" not in page.text
    asset = session.get(hub.service_url + "static/graphiql/graphiql.min.js", timeout=10)
    assert asset.status_code == 200 and len(asset.content) > 100_000

    cookies = {c.name: c for c in session.cookies if c.path == "/services/ngshare-gql/"}
    cookie = cookies["ngshare-gql-session"]
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite") == "Lax"
    assert not cookie.secure  # plain http here; Secure behind https
    assert not cookies["csrftoken"].has_nonstandard_attr("HttpOnly")
    # Signed, readable identity; no token inside.
    payload = URLSafeTimedSerializer("irrelevant").loads_unsafe(cookie.value)[1]
    assert set(payload) == {"name", "admin", "groups", "csrf"}
    # Only the groups that give course roles (the user is in chess-club too).
    assert payload["name"] == "student" and payload["groups"] == [f"nbgrader-{COURSE}"]

    url = hub.service_url + "graphql"
    # Reading with the cookie: GET works; POST needs the CSRF header GraphiQL sends.
    got = session.get(url, params={"query": "{ me { name } }"}, timeout=10).json()
    assert got["data"]["me"]["name"] == "student"
    refused = session.post(url, json={"query": "{ me { name } }"}, timeout=10).json()
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "X-CSRFToken" in refused["errors"][0]["message"]
    wrong = session.post(url, json={"query": "{ me { name } }"},
                         headers={"X-CSRFToken": "guess"}, timeout=10).json()
    assert wrong["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    csrf = {"X-CSRFToken": cookies["csrftoken"].value}
    ok = session.post(url, json={"query": "{ me { name } }"}, headers=csrf, timeout=10).json()
    assert ok["data"]["me"]["name"] == "student"
    # Mutations never run over GET, even with a valid session.
    mutation = 'mutation { unreleaseAssignment(courseId: "hubc", name: "ps1") { name } }'
    over_get = session.get(url, params={"query": mutation}, timeout=10)
    assert over_get.status_code in (400, 405), over_get.text
    assert "GET" in over_get.json()["errors"][0]["message"]
    still = '{ course(id: "hubc") { assignment(name: "ps1") { released } } }'
    released = session.get(url, params={"query": still}, timeout=10).json()
    assert released["data"]["course"]["assignment"]["released"] is True
    # A forged or tampered cookie is no session at all.
    forged = requests.post(url, json={"query": "{ me { name } }"}, headers=csrf,
                           cookies={"ngshare-gql-session": cookie.value[:-3] + "abc"}, timeout=10)
    assert forged.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_a_browser_session_loses_what_the_hub_takes_away(hub):
    """Removed from a course group, a logged-in user loses the course within the cache
    TTL; removed from the hub, they lose the session (the service asks the hub with its
    own token, read:users)."""
    hub.user("leaver", groups=(f"nbgrader-{COURSE}",))
    session = requests.Session()
    assert hub_login(hub, session, "leaver", hub.service_url + "graphql").status_code == 200
    csrf = {"X-CSRFToken": session.cookies.get("csrftoken", path="/services/ngshare-gql/")}

    def ask(query: str) -> dict:
        return session.post(
            hub.service_url + "graphql", json={"query": query}, headers=csrf, timeout=10
        ).json()

    roles = f'{{ course(id: "{COURSE}") {{ myRoles }} }}'
    assert ask(roles)["data"]["course"]["myRoles"] == ["STUDENT"]
    hub.call("DELETE", f"groups/nbgrader-{COURSE}/users", json={"users": ["leaver"]})
    time.sleep(CACHE_TTL + 0.5)
    assert ask(roles)["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    hub.call("DELETE", "users/leaver")
    time.sleep(CACHE_TTL + 0.5)
    gone = ask("{ me { name } }")["errors"][0]
    assert gone["extensions"]["code"] == "UNAUTHENTICATED" and "'leaver'" in gone["message"]


def test_oauth_callback_rejects_a_state_it_did_not_issue(hub):
    session = requests.Session()
    response = session.get(
        hub.service_url + "oauth_callback", params={"code": "abc", "state": "forged"}, timeout=10
    )
    assert response.status_code == 400
    assert "ngshare-gql-session" not in session.cookies


def test_headless_chromium_logs_in_through_the_hub_and_runs_a_query(hub, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,800",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        wait = WebDriverWait(driver, 60)
        query = "{ me { name } }"
        driver.get(hub.service_url + "graphql?" + urlencode({"q": query}))
        wait.until(lambda d: d.find_elements(By.ID, "username_input"))
        driver.find_element(By.ID, "username_input").send_keys("instructor")
        driver.find_element(By.ID, "password_input").send_keys("x")
        driver.find_element(By.ID, "login_submit").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".graphiql-execute-button"))
        scripts = [s.get_attribute("src") for s in driver.find_elements(By.TAG_NAME, "script")]
        assert any(s and "/services/ngshare-gql/static/graphiql/" in s for s in scripts)
        driver.find_element(By.CSS_SELECTOR, ".graphiql-execute-button").click()
        wait.until(
            lambda d: '"instructor"'
            in d.find_element(By.CSS_SELECTOR, ".graphiql-response").text
        )
        result = driver.find_element(By.CSS_SELECTOR, ".graphiql-response").text
        assert re.search(r'"name":\s*"instructor"', result), result
        os.makedirs(ARTIFACTS, exist_ok=True)
        driver.save_screenshot(os.path.join(ARTIFACTS, "graphiql-through-jupyterhub.png"))
    finally:
        driver.quit()


# --- metrics and logs -------------------------------------------------------------------


def test_metrics_sum_over_gunicorn_workers_and_logs_never_hold_tokens(hub):
    value = token(hub, "student")[0]
    probe = {"query": "query MetricsProbe { __typename me { name } }"}
    for _ in range(20):  # new connections, so both workers serve some
        with requests.Session() as fresh:
            answer = fresh.post(hub.service_url + "graphql", json=probe,
                                headers={"Authorization": f"token {value}"}, timeout=10)
            assert answer.status_code == 200
    for _ in range(4):  # whichever worker answers the scrape, it reports all of them
        text = requests.get(hub.service_url + "metrics", timeout=10).text
        assert 'ngshare_requests_total{operation="query:__typename+me",outcome="ok"} 20.0' in text
    assert re.search(r'ngshare_identity_cache_total\{result="hit"\} [1-9]', text)
    assert re.search(r'ngshare_identity_cache_total\{result="miss"\} [1-9]', text)
    assert 'ngshare_body_bytes_total{direction="in"}' in text
    assert 'ngshare_request_duration_seconds_bucket{le="0.1",operation="query:me"}' in text

    log = hub.log()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith('{"time"')]
    mine = [entry for entry in lines if entry["operation_name"] == "MetricsProbe"]
    assert len(mine) == 20
    assert {(e["user"], e["status"], e["outcome"], e["operation"]) for e in mine} == {
        ("student", 200, "ok", "query:__typename+me")
    }
    assert all(e["duration_ms"] >= 0 for e in mine)
    assert TOKENS and not [t for t in TOKENS if t in log]


# --- the hub goes away --------------------------------------------------------------------

SUBMIT = """mutation($c: String!, $a: String!, $files: [FileInput!]!) {
  submitAssignment(courseId: $c, assignment: $a, files: $files) { student } }"""


def test_students_submit_while_the_hub_is_down(tmp_path):
    """The hub crashes at a deadline (on Kubernetes our pods and the proxy keep running):
    students whose tokens the service saw within NGSHARE_HUB_OUTAGE_GRACE still fetch and
    submit; a token it never saw gets a prompt 503 that says what to start."""
    env = {
        "NGSHARE_DATABASE_URL": f"sqlite:///{tmp_path}/ngshare.db",
        "NGSHARE_IDENTITY_CACHE_TTL": "1",
        "NGSHARE_HUB_TIMEOUT": "3",
        "NGSHARE_WORKERS": "1",
    }
    with jupyterhub_server(str(tmp_path), env) as crashing:
        crashing.user("prof", groups=("formgrade-late",))
        crashing.user("ana", groups=("nbgrader-late",))
        prof = Client(crashing.direct_service_url, crashing.token("prof")[0])
        ana = Client(crashing.direct_service_url, crashing.token("ana")[0])
        unseen = Client(crashing.direct_service_url, crashing.token("ana")[0])
        notebook = tmp_path / "task.ipynb"
        notebook.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
        file = LocalFile.scan("task.ipynb", str(notebook))
        files = ({"files": [file.as_input()]}, {"files.0.content": file})
        prof.execute_with_files(RELEASE, {"c": "late", "n": "ps1", **files[0]}, files[1])
        assert ana.execute('{ course(id: "late") { myRoles } }')["course"]["myRoles"] == [
            "STUDENT"
        ]

        crashing.process.kill()
        crashing.process.wait(10)
        # The proxy outlives the hub too, and says so.
        assert requests.get(crashing.url + "hub/api/", timeout=5).status_code == 503
        time.sleep(1.5)  # past the identity cache's TTL

        ana.execute('mutation { fetchAssignment(courseId: "late", name: "ps1") { name } }')
        done = ana.execute_with_files(SUBMIT, {"c": "late", "a": "ps1", **files[0]}, files[1])
        assert done["submitAssignment"]["student"] == "ana"
        started = time.monotonic()
        refused = error_of(lambda: unseen.execute("{ me { name } }"))
        assert refused.code == "HUB_UNAVAILABLE" and "is the hub running?" in str(refused)
        assert time.monotonic() - started < 2, "a refused connection should not be waited for"
        metrics = requests.get(crashing.direct_service_url + "metrics", timeout=10).text
        assert re.search(r'ngshare_identity_cache_total\{result="outage"\} [1-9]', metrics)
        submitted = prof.execute('{ course(id: "late") { assignment(name: "ps1") { '
                                 "submissions { student } } } }")
        assert submitted["course"]["assignment"]["submissions"] == [{"student": "ana"}]
