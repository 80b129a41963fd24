"""Per-request context: the caller is authenticated lazily, on first use."""

from __future__ import annotations

from functools import cached_property

from flask import Request, Response, current_app
from strawberry.types import Info as _Info

from ngshare_gql.auth import authenticate
from ngshare_gql.roles import Caller, caller_for


class Context:
    def __init__(self, request: Request, response: Response) -> None:
        self.request = request
        self.response = response

    @cached_property
    def caller(self) -> Caller:
        return caller_for(authenticate(self.request))

    @property
    def prefix(self) -> str:
        return current_app.extensions["ngshare"].settings.service_prefix


Info = _Info[Context, None]


def selects(info: Info, *path: str) -> bool:
    """Whether the query asks for the sub-field ``path`` of the current field."""
    selections = info.selected_fields
    for name in path:
        found = [
            child
            for field in selections
            for child in getattr(field, "selections", [])
            if getattr(child, "name", None) == name
        ]
        if not found:
            return False
        selections = found
    return True
