"""Courses and their rosters."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from ngshare_gql.domain import events
from ngshare_gql.domain.files import collect_unused, file_hashes
from ngshare_gql.domain.validation import check_name
from ngshare_gql.errors import BadInput, Conflict, NotFound
from ngshare_gql.extensions import db
from ngshare_gql.models import Assignment, Course, Feedback, File, Member, Role, Submission
from ngshare_gql.roles import Caller

_COURSES_BY_ID = sa.select(Course).where(Course.id.in_(sa.bindparam("ids", expanding=True)))


@dataclass
class MemberSpec:
    user: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None


def list_courses(caller: Caller) -> list[Course]:
    """Every course for admins; otherwise the courses the caller holds a role in."""
    if caller.admin:
        return list(db.session.scalars(sa.select(Course).order_by(Course.id)))
    found = {course_id: course for course_id, (course, _) in caller.memberships().items()}
    if unloaded := [course_id for course_id, course in found.items() if course is None]:
        # named only by hub groups: some may have a row already (once used)
        found.update((c.id, c) for c in db.session.scalars(_COURSES_BY_ID, {"ids": unloaded}))
    # Courses known only through hub groups exist as soon as they are used.
    return [found[k] or Course(id=k, title=k) for k in sorted(found)]


def create_course(caller: Caller, course_id: str, title: str | None = None) -> Course:
    caller.require_admin()
    check_name(course_id, "course id")
    if title is not None and len(title) > 512:
        raise BadInput("course title is longer than 512 characters")
    if db.session.get(Course, course_id) is not None:
        raise Conflict(f"course {course_id!r} already exists")
    course = Course(id=course_id, title=title or course_id)
    db.session.add(course)
    events.record(caller, "course.created", course_id)
    db.session.commit()
    return course


def delete_course(caller: Caller, course_id: str) -> None:
    caller.require_admin()
    course = db.session.get(Course, course_id)
    if course is None:
        raise NotFound(f"no course {course_id!r}")
    assignments = sa.select(Assignment.id).where(Assignment.course_id == course_id)
    submissions = sa.select(Submission.id).where(Submission.assignment_id.in_(assignments))
    feedback = sa.select(Feedback.id).where(Feedback.submission_id.in_(submissions))
    contents = file_hashes(
        sa.or_(
            File.assignment_id.in_(assignments),
            File.submission_id.in_(submissions),
            File.feedback_id.in_(feedback),
        )
    )
    db.session.delete(course)
    events.record(caller, "course.deleted", course_id)
    db.session.commit()
    collect_unused(contents)


def roster(caller: Caller, course_id: str, role: Role | None = None) -> list[Member]:
    caller.require_instructor(course_id)
    query = sa.select(Member).where(Member.course_id == course_id)
    if role is not None:
        query = query.where(Member.role == role)
    return list(db.session.scalars(query.order_by(Member.role, Member.user)))


def add_members(
    caller: Caller, course_id: str, role: Role, members: list[MemberSpec]
) -> list[Member]:
    """Add or update members in bulk; existing members get their names refreshed."""
    caller.require_instructor(course_id)
    for spec in members:
        check_name(spec.user, "user name", 255)
        for value in (spec.first_name, spec.last_name, spec.email):
            if value is not None and len(value) > 255:
                raise BadInput("names and email are limited to 255 characters")
    users = [m.user for m in members]
    if len(set(users)) != len(users):
        raise BadInput("a user appears more than once")
    existing = {
        m.user: m
        for m in db.session.scalars(
            sa.select(Member).where(
                Member.course_id == course_id, Member.role == role, Member.user.in_(users)
            )
        )
    }
    result = []
    for spec in members:
        member = existing.get(spec.user) or Member(course_id=course_id, user=spec.user, role=role)
        for attr in ("first_name", "last_name", "email"):
            value = getattr(spec, attr)
            if value is not None:
                setattr(member, attr, value)
        db.session.add(member)
        result.append(member)
    if users:
        events.record(
            caller, "roster.added", course_id, subject=f"{role.value}: {', '.join(users)}"
        )
    db.session.commit()
    return result


def remove_members(caller: Caller, course_id: str, users: list[str], role: Role | None) -> int:
    caller.require_instructor(course_id)
    query = sa.delete(Member).where(Member.course_id == course_id, Member.user.in_(users))
    if role is not None:
        query = query.where(Member.role == role)
    removed = db.session.execute(query).rowcount
    if removed:
        what = role.value if role else "any role"
        events.record(caller, "roster.removed", course_id, subject=f"{what}: {', '.join(users)}")
    db.session.commit()
    return removed
