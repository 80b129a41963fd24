"""Assignments: release, unrelease, fetch, and what each role may see of them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from ngshare_gql.domain import events
from ngshare_gql.domain.files import FileSpec, collect_unused, file_hashes, store_files
from ngshare_gql.domain.validation import check_folders, check_name
from ngshare_gql.errors import Conflict, NotFound
from ngshare_gql.extensions import db, insert_ignore
from ngshare_gql.models import Assignment, File, Submission, utcnow
from ngshare_gql.roles import Caller

# What each role may see (instructors all; students the released assignments and those
# they submitted to), built once with parameters: see :mod:`ngshare_gql.roles`.
_STUDENT_MAY_SEE = sa.or_(
    Assignment.released,
    Assignment.id.in_(
        sa.select(Submission.assignment_id).where(Submission.student == sa.bindparam("student"))
    ),
)
_IN_COURSE = sa.select(Assignment).where(Assignment.course_id == sa.bindparam("course"))
_VISIBLE_TO_STUDENT = _IN_COURSE.where(_STUDENT_MAY_SEE)
# Several courses at once (``courses { assignments }``): those the caller teaches in full,
# the others as a student sees them.
_VISIBLE_IN_COURSES = sa.select(Assignment).where(
    sa.or_(
        Assignment.course_id.in_(sa.bindparam("teaching", expanding=True)),
        sa.and_(
            Assignment.course_id.in_(sa.bindparam("learning", expanding=True)), _STUDENT_MAY_SEE
        ),
    )
)


def _visible_in(caller: Caller, course_id: str) -> tuple[sa.Select, dict[str, str]]:
    """The assignments of a course the caller may see: a statement and its parameters."""
    if caller.is_instructor(course_id):
        return _IN_COURSE, {"course": course_id}
    return _VISIBLE_TO_STUDENT, {"course": course_id, "student": caller.name}


def list_assignments(
    caller: Caller,
    course_ids: Sequence[str],
    *,
    released: bool | None = None,
    with_files: bool = False,
) -> dict[str, list[Assignment]]:
    """The assignments the caller may see in each of ``course_ids``, by name, all in one
    statement (a listing of courses would otherwise cost one per course)."""
    if not caller.admin:  # admins see every course there is
        for course_id in course_ids:
            caller.require_course(course_id)
    teaching = [c for c in course_ids if caller.is_instructor(c)]
    learning = [c for c in course_ids if c not in teaching]
    query = _VISIBLE_IN_COURSES
    if released is not None:
        query = query.where(Assignment.released == released)
    if with_files:
        query = query.options(selectinload(Assignment.files))
    found: dict[str, list[Assignment]] = {course_id: [] for course_id in course_ids}
    params = {"teaching": teaching, "learning": learning, "student": caller.name}
    for assignment in db.session.scalars(
        query.order_by(Assignment.course_id, Assignment.name), params
    ):
        found[assignment.course_id].append(assignment)
    return found


def get_assignment(caller: Caller, course_id: str, name: str) -> Assignment:
    caller.require_course(course_id)
    query, params = _visible_in(caller, course_id)
    assignment = db.session.scalar(query.where(Assignment.name == name), params)
    if assignment is None:
        if caller.is_instructor(course_id):  # students may not learn of unreleased ones
            raise NotFound(f"course {course_id!r} has no assignment {name!r}")
        raise NotFound(f"assignment {name!r} is not released in course {course_id!r}")
    return assignment


def course_of(assignments: Sequence[Assignment]) -> str:
    """The one course that ``assignments`` (listed together, at least one) belong to."""
    courses = {a.course_id for a in assignments}
    if len(courses) != 1:
        raise ValueError(f"expected assignments of one course, got {sorted(courses)}")
    return courses.pop()


def release(
    caller: Caller,
    course_id: str,
    name: str,
    files: list[FileSpec],
    due_at: datetime | None = None,
    force: bool = False,
    folders: Sequence[str] = (),
) -> Assignment:
    """Release (or with ``force`` atomically replace) an assignment's files."""
    caller.require_instructor(course_id)
    check_name(name, "assignment name", 255)
    folders = check_folders(folders, [f.path for f in files])
    # Create the row if missing without racing a concurrent release of the same name
    # (that one waits here until we commit), then hold it until we commit.  NO KEY
    # UPDATE: releases and unreleases of it wait, submissions (whose foreign key
    # check takes KEY SHARE) do not, even while a large release uploads.
    db.session.execute(
        insert_ignore(
            Assignment.__table__, {"course_id": course_id, "name": name, "released": False}
        )
    )
    assignment = db.session.scalar(
        sa.select(Assignment)
        .where(Assignment.course_id == course_id, Assignment.name == name)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    if assignment.released and not force:
        raise Conflict(
            f"assignment {name!r} is already released in course {course_id!r}; "
            "use force to replace it"
        )
    rows = store_files(caller, course_id, files)
    replaced = file_hashes(File.assignment_id == assignment.id)
    db.session.execute(sa.delete(File).where(File.assignment_id == assignment.id))
    assignment.released = True
    assignment.released_at = utcnow()
    assignment.folders = folders
    if due_at is not None:
        assignment.due_at = due_at
    # The new rows are the whole list: setting it without loading the old one (just
    # deleted) spares a SELECT per release.
    for row in rows:
        row.assignment_id = assignment.id
    db.session.add_all(rows)
    set_committed_value(assignment, "files", rows)
    events.record(caller, "assignment.released", course_id, name, subject=f"{len(rows)} files")
    db.session.commit()
    collect_unused(replaced)
    return assignment


def unrelease(caller: Caller, course_id: str, name: str) -> Assignment:
    """Withdraw the released files; submissions and feedback stay."""
    caller.require_instructor(course_id)
    assignment = get_assignment(caller, course_id, name)
    # Wait for a release of it in progress, so its files are withdrawn too.
    db.session.refresh(assignment, with_for_update={"key_share": True})
    if not assignment.released:
        raise NotFound(f"assignment {name!r} is not released in course {course_id!r}")
    withdrawn = file_hashes(File.assignment_id == assignment.id)
    db.session.execute(sa.delete(File).where(File.assignment_id == assignment.id))
    db.session.expire(assignment, ["files"])
    assignment.released = False
    assignment.folders = []
    events.record(caller, "assignment.unreleased", course_id, name)
    db.session.commit()
    collect_unused(withdrawn)
    return assignment


def fetch(caller: Caller, course_id: str, name: str) -> Assignment:
    """A released assignment with its files, recorded as fetched by the caller."""
    caller.require_course(course_id)
    assignment = db.session.scalar(
        sa.select(Assignment)
        .where(Assignment.course_id == course_id, Assignment.name == name, Assignment.released)
        .options(selectinload(Assignment.files))
    )
    if assignment is None:
        raise NotFound(f"assignment {name!r} is not released in course {course_id!r}")
    events.record(caller, "assignment.fetched", course_id, name)
    db.session.commit()
    return assignment
