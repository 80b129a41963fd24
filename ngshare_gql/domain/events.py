"""The audit log instructors read: who released, fetched, submitted, collected, returned."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from ngshare_gql.extensions import db
from ngshare_gql.models import Event
from ngshare_gql.roles import Caller

MAX_EVENTS = 1000
NEVER_DELETED = datetime(1970, 1, 1)  # before any event: a course id not deleted yet


def record(
    caller: Caller,
    action: str,
    course_id: str,
    assignment: str | None = None,
    subject: str | None = None,
) -> None:
    """Add an event to the current unit of work (committed with it)."""
    db.session.add(
        Event(
            actor=caller.name,
            action=action,
            course_id=course_id,
            assignment=assignment,
            subject=subject[:1024] if subject else subject,
        )
    )


def list_events(
    caller: Caller,
    course_id: str,
    assignment: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    before: datetime | None = None,
    limit: int = 100,
) -> list[Event]:
    """Newest first; instructors of the course and admins only.

    A course id deleted and created again starts a new log for its instructors: the
    events before its deletion (the old cohort's names, submissions and fetches) are
    not theirs to read.  Admins, who could read the old course, see the whole log."""
    caller.require_instructor(course_id)
    query = sa.select(Event).where(Event.course_id == course_id)
    if not caller.admin:
        last_id = (
            sa.select(sa.func.max(Event.id))
            .where(Event.course_id == course_id, Event.action == "course.deleted")
            .scalar_subquery()
        )
        query = query.where(Event.id > sa.func.coalesce(last_id, 0))
        # The same bound by time, so that the index skips the old log rather than reading
        # it: the course was created again after its deletion, minutes rather than the
        # milliseconds two replicas' clocks may differ by.
        last_at = sa.select(Event.at).where(Event.id == last_id).scalar_subquery()
        query = query.where(Event.at >= sa.func.coalesce(last_at, NEVER_DELETED))
    if assignment is not None:
        query = query.where(Event.assignment == assignment)
    if actor is not None:
        query = query.where(Event.actor == actor)
    if action is not None:
        query = query.where(Event.action == action)
    if before is not None:
        query = query.where(Event.at < before)
    limit = max(1, min(limit, MAX_EVENTS))
    return list(db.session.scalars(query.order_by(Event.at.desc(), Event.id.desc()).limit(limit)))
