"""Scalars beyond GraphQL's own: file sizes exceed a 32-bit Int."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import NewType

import strawberry

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


def from_client(value: datetime | None) -> datetime | None:
    """A client's time as naive UTC (a time without zone is taken as UTC)."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)
