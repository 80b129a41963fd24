"""Error codes for clients; unexpected errors masked for them and logged in full here."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from ngshare_gql.errors import ExchangeError, database_unavailable

log = logging.getLogger("ngshare_gql.errors")

MASKED = "Unexpected error; the service log has the details."


def _with_code(error: GraphQLError, code: str) -> GraphQLError:
    error.extensions = {**(error.extensions or {}), "code": code}
    return error


def _replaced(error: GraphQLError, message: str, code: str) -> GraphQLError:
    """A new error in the same place, without the original's message or cause."""
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": code},
    )


def classify(error: GraphQLError) -> GraphQLError:
    """The error as the client should see it, with ``extensions.code``."""
    original = error.original_error
    if isinstance(original, ExchangeError):
        error.message = original.message
        return _with_code(error, original.code)
    if original is None or isinstance(original, GraphQLError):
        # Parse, validation and variable errors: the query itself is wrong.
        return _with_code(error, "BAD_USER_INPUT")
    if database_unavailable(original):
        log.warning("database unavailable in %s: %s", error.path, type(original).__name__)
        return _replaced(
            error, "the database is unavailable; try again shortly", "SERVICE_UNAVAILABLE"
        )
    if isinstance(original, RecursionError):
        return _replaced(error, "the query is nested too deeply", "BAD_USER_INPUT")
    if isinstance(original, (ValueError, TypeError)) and "cannot represent" in str(original):
        return _with_code(error, "BAD_USER_INPUT")
    log.error("unexpected error in %s", error.path, exc_info=original)
    return _replaced(error, MASKED, "INTERNAL_SERVER_ERROR")


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
