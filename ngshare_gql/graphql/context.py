"""Per-request context: the caller is authenticated lazily, on first use."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import cached_property
from typing import Any, TypeVar

from flask import Request, Response, current_app
from graphql import OperationType
from strawberry.types import Info as _Info

from ngshare_gql.auth import authenticate
from ngshare_gql.roles import Caller, caller_for

T = TypeVar("T")


class Context:
    def __init__(self, request: Request, response: Response) -> None:
        self.request = request
        self.response = response
        self._loaded: dict[Hashable, Any] = {}

    def once(self, key: Hashable, load: Callable[[], T]) -> T:
        """``load()``, run once per request for ``key``: how the items of a list share
        one statement for a field instead of one each.  Only for queries (see
        :func:`reads_only`): a mutation's later fields may change what was loaded."""
        if key not in self._loaded:
            self._loaded[key] = load()
        return self._loaded[key]

    @cached_property
    def caller(self) -> Caller:
        return caller_for(authenticate(self.request))

    @property
    def prefix(self) -> str:
        return current_app.extensions["ngshare"].settings.service_prefix


Info = _Info[Context, None]


def reads_only(info: Info) -> bool:
    """Whether the operation is a query: nothing it runs changes the data, so a load
    can serve all of its fields."""
    return info.operation.operation is OperationType.QUERY


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
