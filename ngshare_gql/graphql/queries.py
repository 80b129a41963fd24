"""Read-only entry points."""

from __future__ import annotations

from datetime import datetime

import strawberry

from ngshare_gql.domain import courses, events, files
from ngshare_gql.graphql.context import Info
from ngshare_gql.graphql.scalars import from_client
from ngshare_gql.graphql.types import Course, CourseRoles, Event, Me, Role


@strawberry.type
class Query:
    @strawberry.field(description="Who the caller is, and their roles per course.")
    def me(self, info: Info) -> Me:
        caller = info.context.caller
        roles = caller.all_roles()
        return Me(
            name=caller.name,
            admin=caller.admin,
            roles=[
                CourseRoles(
                    course_id=course_id,
                    roles=sorted((Role.of(r) for r in held), key=lambda r: r.value),
                )
                for course_id, held in sorted(roles.items())
            ],
        )

    @strawberry.field(description="Courses the caller holds a role in (admins: all).")
    def courses(self, info: Info) -> list[Course]:
        rows = courses.list_courses(info.context.caller)
        listed = tuple(c.id for c in rows)
        return [Course(model=c, listed_with=listed) for c in rows]

    @strawberry.field
    def course(self, info: Info, id: str) -> Course:
        return Course(model=info.context.caller.require_course(id))

    @strawberry.field(
        description=(
            "Of these sha256 hashes, those whose content you must upload: the server lacks "
            "them, or they are not yours to reuse in this course."
        )
    )
    def missing_content(self, info: Info, course_id: str, sha256: list[str]) -> list[str]:
        return files.missing_content(info.context.caller, course_id, sha256)

    @strawberry.field(description="The audit log of a course, newest first (instructors).")
    def events(
        self,
        info: Info,
        course_id: str,
        assignment: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        before: datetime | None = None,
        limit: int = 100,
    ) -> list[Event]:
        rows = events.list_events(
            info.context.caller,
            course_id,
            assignment=assignment,
            actor=actor,
            action=action,
            before=from_client(before, "before"),
            limit=limit,
        )
        return [Event.of(e) for e in rows]
