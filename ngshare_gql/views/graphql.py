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

    def dispatch_request(self):
        if _browser_needs_login():
            return login_redirect(request.full_path.rstrip("?"))
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
