"""The GraphQL endpoint: Strawberry's Flask view with our context and error shapes."""

from __future__ import annotations

import json

from cross_web import HTTPException
from flask import Request, Response, request
from strawberry.flask.views import GraphQLView as _GraphQLView
from werkzeug.exceptions import RequestEntityTooLarge

from ngshare_gql.graphql.context import Context


def error_response(message: str, code: str, status: int) -> Response:
    body = {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}
    return Response(json.dumps(body), status=status, content_type="application/json")


class GraphQLView(_GraphQLView):
    def get_context(self, request: Request, response: Response) -> Context:
        return Context(request, response)

    def dispatch_request(self):
        try:
            return self.run(request=request)
        except HTTPException as exc:
            return error_response(exc.reason, "BAD_USER_INPUT", exc.status_code)
        except RequestEntityTooLarge as exc:
            return error_response(
                exc.description or "the request is too large", "PAYLOAD_TOO_LARGE", 413
            )
