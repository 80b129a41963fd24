"""Authorization: what a caller may do in one course.

A caller's role is always looked up in the course an operation names, never
taken from some "current" course.  Roles come from the service's roster or from
hub groups named by a pattern (nbgrader's own ``formgrade-{course}`` and
``nbgrader-{course}`` by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import current_app

from ngshare_gql.auth import Identity
from ngshare_gql.errors import Forbidden, NotFound
from ngshare_gql.extensions import db
from ngshare_gql.models import Course, Member, Role

# Built once, with parameters: building a statement costs about as much as running
# it on SQLite, and these run for nearly every request.  Each loads the course rows with
# the caller's roles, so that checking a role and using the course cost one statement.
_COURSE_AND_ROLES = (
    sa.select(Course, Member.role)
    .outerjoin(
        Member, sa.and_(Member.course_id == Course.id, Member.user == sa.bindparam("user"))
    )
    .where(Course.id == sa.bindparam("course"))
)
_MEMBERSHIPS = (
    sa.select(Course, Member.role)
    .join(Member, Member.course_id == Course.id)
    .where(Member.user == sa.bindparam("user"))
)


@dataclass(frozen=True)
class GroupRules:
    """Hub group names that confer a role, ``{course}`` standing for the course id."""

    instructor: str = "formgrade-{course}"
    student: str = "nbgrader-{course}"

    def roles_from_groups(self, groups: frozenset[str], course_id: str) -> set[Role]:
        roles = set()
        if self.instructor and self.instructor.format(course=course_id) in groups:
            roles.add(Role.INSTRUCTOR)
        if self.student and self.student.format(course=course_id) in groups:
            roles.add(Role.STUDENT)
        return roles

    def courses_from_groups(self, groups: frozenset[str]) -> dict[str, set[Role]]:
        found: dict[str, set[Role]] = {}
        for role, pattern in ((Role.INSTRUCTOR, self.instructor), (Role.STUDENT, self.student)):
            if not pattern or "{course}" not in pattern:
                continue
            head, _, tail = pattern.partition("{course}")
            for group in groups:
                if group.startswith(head) and group.endswith(tail):
                    course = group[len(head) : len(group) - len(tail)]
                    if course:
                        found.setdefault(course, set()).add(role)
        return found


@dataclass
class Caller:
    """The authenticated user of one request, with their roles cached per course."""

    identity: Identity
    admin: bool
    groups: GroupRules = field(default_factory=GroupRules)
    _roles: dict[str, set[Role]] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.identity.name

    def roles_in(self, course_id: str) -> set[Role]:
        if course_id not in self._roles:
            self._course(course_id)
            self._roles.setdefault(course_id, self._group_roles(course_id))
        return self._roles[course_id]

    def all_roles(self) -> dict[str, set[Role]]:
        """Every course the caller holds a role in (roster or hub groups)."""
        return {course_id: roles for course_id, (_, roles) in self.memberships().items()}

    def memberships(self) -> dict[str, tuple[Course | None, set[Role]]]:
        """Every course the caller holds a role in, with its row if it has one yet (a
        course named only by a hub group may not): one statement."""
        found: dict[str, tuple[Course | None, set[Role]]] = {
            course_id: (None, roles)
            for course_id, roles in self.groups.courses_from_groups(self.identity.groups).items()
        }
        for course, role in db.session.execute(_MEMBERSHIPS, {"user": self.name}):
            found.setdefault(course.id, (None, set()))
            found[course.id] = (course, found[course.id][1] | {role})
        self._roles.update((course_id, roles) for course_id, (_, roles) in found.items())
        return found

    def _group_roles(self, course_id: str) -> set[Role]:
        return self.groups.roles_from_groups(self.identity.groups, course_id)

    def _course(self, course_id: str) -> Course | None:
        """The course's row, if there is one; the caller's roles in it come with it in
        the same statement when they are not known yet."""
        if course_id in self._roles:
            return db.session.get(Course, course_id)
        rows = db.session.execute(
            _COURSE_AND_ROLES, {"course": course_id, "user": self.name}
        ).all()
        if not rows:
            return None
        roster = {role for _, role in rows if role is not None}
        self._roles[course_id] = roster | self._group_roles(course_id)
        return rows[0][0]

    def is_instructor(self, course_id: str) -> bool:
        return self.admin or Role.INSTRUCTOR in self.roles_in(course_id)

    def is_student(self, course_id: str) -> bool:
        return Role.STUDENT in self.roles_in(course_id)

    def can_see(self, course_id: str) -> bool:
        return self.admin or bool(self.roles_in(course_id))

    def require_admin(self) -> None:
        if not self.admin:
            raise Forbidden("only a service admin may do this")

    def require_course(self, course_id: str) -> Course:
        """The course, if the caller holds any role in it (admins see every course)."""
        course = self._course(course_id)
        if course is None and self._group_roles(course_id):
            # A hub group names the course: it exists as soon as its members use it.
            course = Course(id=course_id, title=course_id)
            db.session.add(course)
            db.session.flush()
        if course is None:
            if self.admin:
                raise NotFound(f"no course {course_id!r}")
            # Non-members learn nothing about which course ids exist.
            raise Forbidden(f"you are not a member of course {course_id!r}")
        if not self.can_see(course_id):
            raise Forbidden(f"you are not a member of course {course_id!r}")
        return course

    def require_instructor(self, course_id: str) -> Course:
        course = self.require_course(course_id)
        if not self.is_instructor(course_id):
            raise Forbidden(f"you are not an instructor of course {course_id!r}")
        return course

    def require_student(self, course_id: str) -> Course:
        course = self.require_course(course_id)
        if not self.is_student(course_id):
            if Role.INSTRUCTOR in self.roles_in(course_id):  # trying their own course
                raise Forbidden(
                    f"you teach course {course_id!r} but are not one of its students;"
                    " to submit too, add yourself to its students"
                )
            raise Forbidden(f"you are not a student of course {course_id!r}")
        return course


def caller_for(identity: Identity) -> Caller:
    """The :class:`Caller` for an identity, under this app's admin and group settings."""
    services = current_app.extensions["ngshare"]
    admin = identity.admin or identity.name in services.settings.admins
    return Caller(identity=identity, admin=admin, groups=services.group_rules)
