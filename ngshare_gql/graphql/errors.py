"""Error codes for clients; unexpected errors masked for them and logged in full here."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from ngshare_gql.errors import ExchangeError, database_unavailable

log = logging.getLogger("ngshare_gql.errors")

MASKED = "Unexpected error; the service log has the details."


def classify(error: GraphQLError) -> GraphQLError:
    """The error as the client should see it, with ``extensions.code``."""
    original = error.original_error
    if isinstance(original, ExchangeError):
        error.message = original.message
        error.extensions = {**(error.extensions or {}), "code": original.code}
        return error
    if original is None or isinstance(original, GraphQLError):
        # Parse, validation and variable errors: the query itself is wrong.
        error.extensions = {**(error.extensions or {}), "code": "BAD_USER_INPUT"}
        return error
    if database_unavailable(original):
        log.warning("database unavailable in %s: %s", error.path, type(original).__name__)
        return GraphQLError(
            "the database is unavailable; try again shortly",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "SERVICE_UNAVAILABLE"},
        )
    if isinstance(original, RecursionError):
        return GraphQLError(
            "the query is nested too deeply",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "BAD_USER_INPUT"},
        )
    if isinstance(original, (ValueError, TypeError)) and "cannot represent" in str(original):
        error.extensions = {**(error.extensions or {}), "code": "BAD_USER_INPUT"}
        return error
    log.error("unexpected error in %s", error.path, exc_info=original)
    return GraphQLError(
        MASKED,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions={"code": "INTERNAL_SERVER_ERROR"},
    )


class ErrorCodes(SchemaExtension):
    """Rewrites every error of a result with :func:`classify`."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [classify(e) for e in result.errors]
        pre = self.execution_context.pre_execution_errors
        if pre:
            self.execution_context.pre_execution_errors = [classify(e) for e in pre]
