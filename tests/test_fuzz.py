"""Schema-driven fuzzing with schemathesis against a real gunicorn, once per role.

Schemathesis generates operations from the schema the running service publishes
(introspection); some of their string arguments are swapped for ids that exist
(course ``c1``, assignment ``ps1``, student ``s1``), so generated operations reach
the real code paths, not only "no such course".  Every response must be:

* not a 5xx, a JSON object, no traceback or server path in it;
* every error with a known ``extensions.code`` other than INTERNAL_SERVER_ERROR;
* ``data`` shaped exactly as the query asks under the schema (types, nullability,
  lists, aliases, fragments): no response that breaks the schema.

``NGSHARE_FUZZ_EXAMPLES`` sets the examples per operation and role (CI: a bounded
run; 60 gives more than 1,000 operations per role); ``NGSHARE_FUZZ_DATABASE=postgresql``
runs the service on PostgreSQL instead of SQLite.
"""

from __future__ import annotations

import json
import os
import warnings
from collections import Counter

import graphql
import pytest
import requests
import schemathesis.graphql
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.graphql import nodes

from ngshare_gql.client import Client, LocalFile
from tests.servers import create_course, create_database, gunicorn_server, service_env

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("NGSHARE_FUZZ_EXAMPLES", "3"))
DATABASE = os.environ.get("NGSHARE_FUZZ_DATABASE", "sqlite")
ROLES = {"admin": "admin", "instructor": "ins", "student": "s1", "outsider": "nobody",
         "no_token": None}
CODES = {"UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "BAD_USER_INPUT", "CONFLICT",
         "PAYLOAD_TOO_LARGE"}
# Arguments that name things: sometimes replaced by ones that exist.
KNOWN = {"id": "c1", "courseId": "c1", "name": "ps1", "assignment": "ps1", "student": "s1",
         "user": "s2", "notebook": "nb1"}

schemathesis.graphql.scalar(
    "Upload", st.one_of(st.just(nodes.Null), st.text(max_size=5).map(nodes.String))
)


def swap_known_ids(query: str, draw_bool) -> str:
    """The query with some string arguments named in ``KNOWN`` set to existing ids."""

    def swapped(node) -> graphql.StringValueNode | None:
        if (node.name.value in KNOWN and isinstance(node.value, graphql.StringValueNode)
                and draw_bool()):
            return graphql.StringValueNode(value=KNOWN[node.name.value])
        return None

    class Swap(graphql.Visitor):
        def enter_argument(self, node, *_):
            value = swapped(node)
            return graphql.ArgumentNode(name=node.name, value=value) if value else None

        def enter_object_field(self, node, *_):
            value = swapped(node)
            return graphql.ObjectFieldNode(name=node.name, value=value) if value else None

    return graphql.print_ast(graphql.visit(graphql.parse(query), Swap()))


def conforms(schema: graphql.GraphQLSchema, query: str, data: object) -> list[str]:
    """Where ``data`` breaks the shape ``query`` asks for under ``schema`` (empty: none)."""
    document = graphql.parse(query)
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, graphql.FragmentDefinitionNode)}
    (operation,) = [d for d in document.definitions
                    if isinstance(d, graphql.OperationDefinitionNode)]
    root = schema.get_root_type(operation.operation)
    problems: list[str] = []

    def fields(selection_set, parent) -> list[graphql.FieldNode]:
        found = []
        for sel in selection_set.selections:
            if isinstance(sel, graphql.FieldNode):
                found.append(sel)
            elif isinstance(sel, graphql.InlineFragmentNode):
                found += fields(sel.selection_set, parent)
            else:
                found += fields(fragments[sel.name.value].selection_set, parent)
        return found

    def check(value, gtype, selection_set, where: str) -> None:
        if isinstance(gtype, graphql.GraphQLNonNull):
            if value is None:
                problems.append(f"{where}: null for {gtype}")
                return
            gtype = gtype.of_type
        if value is None:
            return
        if isinstance(gtype, graphql.GraphQLList):
            if not isinstance(value, list):
                problems.append(f"{where}: not a list")
                return
            for i, item in enumerate(value):
                check(item, gtype.of_type, selection_set, f"{where}[{i}]")
            return
        if isinstance(gtype, graphql.GraphQLObjectType):
            if not isinstance(value, dict):
                problems.append(f"{where}: not an object")
                return
            check_object(value, gtype, selection_set, where)
            return
        if isinstance(gtype, graphql.GraphQLEnumType):
            if value not in gtype.values:
                problems.append(f"{where}: {value!r} is no {gtype.name}")
            return
        expected = {"String": str, "ID": str, "Boolean": bool, "Int": int, "BigInt": int,
                    "Float": (int, float), "DateTime": str}.get(gtype.name, object)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            problems.append(f"{where}: {value!r} is no {gtype.name}")

    def check_object(value: dict, gtype, selection_set, where: str) -> None:
        asked = {}
        for node in fields(selection_set, gtype):
            key = node.alias.value if node.alias else node.name.value
            asked[key] = node
        if set(value) != set(asked):
            problems.append(f"{where}: keys {sorted(value)} but asked {sorted(asked)}")
        for key, node in asked.items():
            if key not in value:
                continue
            if node.name.value == "__typename":
                if value[key] != gtype.name:
                    problems.append(f"{where}.{key}: typename {value[key]!r}")
                continue
            field = gtype.fields[node.name.value]
            check(value[key], field.type, node.selection_set, f"{where}.{key}")

    if data is not None:
        check(data, graphql.GraphQLNonNull(root), operation.selection_set, "data")
    return problems


@pytest.fixture(scope="module")
def service(tmp_path_factory, request):
    """A gunicorn service with a course, a release and a submission."""
    tmp = tmp_path_factory.mktemp("fuzz")
    log = tmp / "service.log"
    extra = {}
    if DATABASE == "postgresql":
        server = request.getfixturevalue("postgres_server")
        extra["NGSHARE_DATABASE_URL"] = create_database(server, "ngshare_fuzz")
    env = service_env(tmp, **extra)
    with gunicorn_server(env, workers=2, threads=4, log_path=str(log)) as url:
        admin = Client(url, "admin")
        create_course(admin, "c1", ["ins"], ["s1", "s2"])
        notebook = tmp / "ps1.ipynb"
        notebook.write_bytes(b'{"cells": []}')
        local = LocalFile.scan("ps1.ipynb", str(notebook))
        release = ('mutation($f: [FileInput!]!) { releaseAssignment(courseId: "c1", name: "ps1", '
                   "files: $f) { name } }")
        Client(url, "ins").execute_with_files(release, {"f": [local.as_input()]},
                                              {"f.0.content": local})
        submit = ('mutation($f: [FileInput!]!) { submitAssignment(courseId: "c1", '
                  'assignment: "ps1", files: $f) { id } }')
        Client(url, "s1").execute_with_files(submit, {"f": [local.as_input()]},
                                             {"f.0.content": local})
        yield url, log


def test_fuzz_every_operation_per_role(service):
    url, log = service
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        api = schemathesis.graphql.from_url(url + "graphql",
                                            headers={"Authorization": "token admin"})
    gschema = graphql.build_client_schema(
        requests.post(url + "graphql", json={"query": graphql.get_introspection_query()},
                      headers={"Authorization": "token admin"}, timeout=30).json()["data"]
    )
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 18
    session = requests.Session()
    tally: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    failures: list[str] = []

    for role, token in ROLES.items():
        headers = {"Authorization": f"token {token}"} if token else {}
        for operation in operations:

            @given(case=operation.as_strategy(), data=st.data())
            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            def run(case, data):
                case.body = swap_known_ids(case.body, lambda: data.draw(st.booleans()))
                response = case.call(headers=headers, session=session)  # noqa: B023
                tally[role] += 1  # noqa: B023
                problem = judge(gschema, case.body, response, codes)
                if problem:
                    failures.append(f"{role} {operation.label}: {problem}\n{case.body}")  # noqa: B023

            run()
    print(f"\nfuzz ({DATABASE}): operations per role {dict(tally)}; error codes {dict(codes)}")
    assert not failures, "\n\n".join(failures[:10])
    assert all(n >= len(operations) for n in tally.values())
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[text.index("Traceback") - 500:][:3000]


def judge(gschema, query: str, response: requests.Response, codes: Counter) -> str | None:
    """What is wrong with a response, or None."""
    if response.status_code >= 500:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    try:
        body = response.json()
    except ValueError:
        return f"not JSON: {response.text[:300]}"
    if not isinstance(body, dict):
        return "not a JSON object"
    text = json.dumps(body)
    if "Traceback" in text or "/site-packages/" in text or os.getcwd() in text:
        return "server internals in the response"
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        codes[code] += 1
        if code not in CODES:
            return f"error code {code!r}: {error.get('message')}"
    problems = conforms(gschema, query, body.get("data"))
    if problems:
        return "breaks the schema: " + "; ".join(problems[:5])
    return None
