"""Errors the domain raises on purpose; each carries the code clients see.

Anything else that escapes is a bug: the API masks it and logs it in full.
"""

from __future__ import annotations

import sqlalchemy as sa


class ExchangeError(Exception):
    code = "INTERNAL_SERVER_ERROR"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthenticated(ExchangeError):
    code = "UNAUTHENTICATED"
    status = 401


class Forbidden(ExchangeError):
    code = "FORBIDDEN"
    status = 403


class NotFound(ExchangeError):
    code = "NOT_FOUND"
    status = 404


class BadInput(ExchangeError):
    code = "BAD_USER_INPUT"
    status = 400


class Conflict(ExchangeError):
    code = "CONFLICT"
    status = 409


class PayloadTooLarge(ExchangeError):
    code = "PAYLOAD_TOO_LARGE"
    status = 413


class HubUnavailable(ExchangeError):
    code = "HUB_UNAVAILABLE"
    status = 503


class ServiceUnavailable(ExchangeError):
    code = "SERVICE_UNAVAILABLE"
    status = 503


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached right now (down, restarting,
    network cut, locked): the client should retry, nothing is wrong with its request."""
    return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)) or bool(
        getattr(exc, "connection_invalidated", False)
    )
