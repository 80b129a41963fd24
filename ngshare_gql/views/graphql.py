"""The GraphQL endpoint: Strawberry's Flask view with our context and error shapes.

A browser opening it (GET, ``Accept: text/html``) gets GraphiQL: first sent through the
hub's login when it has no session yet, then the page, from local files when
``NGSHARE_GRAPHIQL_ASSETS`` names a folder (scripts/graphiql-assets.sh), else
Strawberry's page that loads GraphiQL from a CDN.
"""

from __future__ import annotations

import json

from cross_web import HTTPException
from flask import Request, Response, current_app, render_template, request, send_from_directory
from strawberry.flask.views import GraphQLView as _GraphQLView
from werkzeug.exceptions import NotFound, RequestEntityTooLarge

from ngshare_gql.auth import read_session
from ngshare_gql.graphql.context import Context
from ngshare_gql.oauth import login_redirect

# Longest list a request's variables may hold (hashes, members, files): bounded so one
# request can't make the database bind more parameters than it accepts.
MAX_LIST_ITEMS = 5000


def _longest_list(value: object) -> int:
    if isinstance(value, list):
        return max([len(value), *(_longest_list(v) for v in value)])
    if isinstance(value, dict):
        return max([0, *(_longest_list(v) for v in value.values())])
    return 0


def _has_nul(value: object) -> bool:
    """A NUL character anywhere: no name, path or id may hold one (PostgreSQL refuses
    them in text, which would surface as a 500 on the first query that compares)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


def error_response(message: str, code: str, status: int) -> Response:
    body = {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}
    return Response(json.dumps(body), status=status, content_type="application/json")


def _browser_needs_login() -> bool:
    settings = current_app.extensions["ngshare"].settings
    return (
        request.method == "GET"
        and "query" not in request.args
        and "text/html" in request.headers.get("Accept", "")
        and not settings.dev_identity
        and "Authorization" not in request.headers
        and read_session(request) is None
    )


class GraphQLView(_GraphQLView):
    def get_context(self, request: Request, response: Response) -> Context:
        return Context(request, response)

    def render_graphql_ide(self, request: Request) -> Response:
        settings = current_app.extensions["ngshare"].settings
        if settings.graphiql_assets:
            assets = settings.service_prefix + "static/graphiql/"
            page = render_template("graphiql.html", assets=assets)
            return Response(page, content_type="text/html; charset=utf-8")
        return super().render_graphql_ide(request)

    def parse_json(self, data: str | bytes) -> object:
        try:
            return self.decode_json(data)
        except (ValueError, RecursionError):
            raise HTTPException(400, "the request body is not valid JSON") from None

    def parse_http_body(self, request_adapter):
        """Strawberry's parsing, with any malformed body (JSON that is not an object,
        bytes that are not UTF-8, a broken multipart ``map``) a 400 instead of a 500."""
        try:
            data = super().parse_http_body(request_adapter)
        except (UnicodeDecodeError, AttributeError, TypeError, ValueError, RecursionError):
            raise HTTPException(
                400, "the request body is not a GraphQL request (JSON object or multipart)"
            ) from None
        for item in data if isinstance(data, list) else [data]:
            if _longest_list(item.variables) > MAX_LIST_ITEMS:
                raise HTTPException(
                    400, f"a list in the variables is longer than {MAX_LIST_ITEMS} items; "
                    "split the operation"
                )
            if _has_nul(item.variables):
                raise HTTPException(400, "the variables contain a NUL character")
        return data

    def create_response(self, response_data, sub_response: Response) -> Response:
        """When the hub or the database could not be reached, say so with HTTP 503 (and
        ``Retry-After``) as well, for load balancers and retrying clients."""
        if isinstance(response_data, dict) and response_data.get("data") is None:
            errors = response_data.get("errors") or []
            codes = {(e.get("extensions") or {}).get("code") for e in errors}
            if codes and codes <= {"HUB_UNAVAILABLE", "SERVICE_UNAVAILABLE"}:
                sub_response.status_code = 503
                sub_response.headers["Retry-After"] = "5"
        return super().create_response(response_data, sub_response)

    def dispatch_request(self):
        if _browser_needs_login():
            return login_redirect(request.full_path.rstrip("?"))
        if (
            not request.mimetype.startswith("multipart/")
            and (request.content_length or 0) > request.max_form_memory_size
        ):
            return error_response(
                f"a request without files is limited to {request.max_form_memory_size} bytes",
                "PAYLOAD_TOO_LARGE",
                413,
            )
        try:
            return self.run(request=request)
        except HTTPException as exc:
            return error_response(exc.reason, "BAD_USER_INPUT", exc.status_code)
        except RequestEntityTooLarge as exc:
            return error_response(
                exc.description or "the request is too large", "PAYLOAD_TOO_LARGE", 413
            )


def graphiql_asset(filename: str) -> Response:
    """GraphiQL's JavaScript and CSS from the local folder."""
    folder = current_app.extensions["ngshare"].settings.graphiql_assets
    if not folder:
        raise NotFound()
    return send_from_directory(folder, filename, max_age=86400)
