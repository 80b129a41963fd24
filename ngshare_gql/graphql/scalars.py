"""Scalars beyond GraphQL's own: file sizes exceed a 32-bit Int."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import NewType

import strawberry

from ngshare_gql.errors import BadInput

BigInt = NewType("BigInt", int)


def _parse_big_int(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"BigInt cannot represent {value!r}")


SCALARS = {
    BigInt: strawberry.scalar(
        name="BigInt",
        description="An integer that may exceed 32 bits (file sizes in bytes).",
        serialize=int,
        parse_value=_parse_big_int,
    )
}


def as_utc(value: datetime | None) -> datetime | None:
    """Database times are naive UTC; the API shows them with their zone."""
    return value.replace(tzinfo=timezone.utc) if value is not None else None


def from_client(value: datetime | None, name: str) -> datetime | None:
    """A client's time (the argument or field ``name``) as naive UTC; a time without
    zone is taken as UTC.  A time whose UTC falls outside years 1-9999 is bad input."""
    if value is None or value.tzinfo is None:
        return value
    try:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    except OverflowError:
        raise BadInput(f"{name}: {value.isoformat()} is out of range in UTC") from None
