"""Submissions: students hand in, instructors list and collect."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import sqlalchemy as sa
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from ngshare_gql.domain import events
from ngshare_gql.domain.assignments import course_of, get_assignment
from ngshare_gql.domain.files import FileSpec, collect_unused, file_hashes, store_files
from ngshare_gql.domain.validation import check_folders, check_name
from ngshare_gql.errors import BadInput, Forbidden, NotFound
from ngshare_gql.extensions import db
from ngshare_gql.models import Assignment, Feedback, File, Submission, utcnow
from ngshare_gql.roles import Caller

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f UTC"
MAX_STUDENTS = 5_000  # names in one filter: a large course's roster


@dataclass(frozen=True)
class SubmissionFilter:
    """Which submissions of an assignment to list or collect."""

    student: str | None = None
    students: tuple[str, ...] | None = None  # any of these (a course's worth at most)
    latest_only: bool = False
    uncollected: bool = False
    before_due: bool = False
    include_removed: bool = False  # listing only: what is removed is never collected


def submit(
    caller: Caller,
    course_id: str,
    assignment_name: str,
    files: list[FileSpec],
    timestamp: str | None = None,
    folders: Sequence[str] = (),
) -> Submission:
    caller.require_student(course_id)
    assignment = db.session.scalar(
        sa.select(Assignment).where(
            Assignment.course_id == course_id,
            Assignment.name == assignment_name,
            Assignment.released,
        )
    )
    if assignment is None:
        raise NotFound(f"assignment {assignment_name!r} is not released in course {course_id!r}")
    if timestamp is not None and (len(timestamp) > 64 or not timestamp.strip()):
        raise BadInput("timestamp must be 1 to 64 characters")
    folders = check_folders(folders, [f.path for f in files])
    rows = store_files(caller, course_id, files)
    now = utcnow()
    submission = Submission(
        assignment=assignment,
        student=caller.name,
        received_at=now,
        timestamp=timestamp.strip() if timestamp else now.strftime(TIMESTAMP_FORMAT),
        late=assignment.due_at is not None and now > assignment.due_at,
        files=rows,
        folders=folders,
    )
    db.session.add(submission)
    events.record(
        caller, "submission.submitted", course_id, assignment_name, subject=submission.timestamp
    )
    db.session.commit()
    return submission


def _query(caller: Caller, assignments: Sequence[Assignment], which: SubmissionFilter):
    """The submissions of ``assignments`` (all of one course) the caller may see."""
    course_id = course_of(assignments)
    query = sa.select(Submission).where(Submission.assignment_id.in_([a.id for a in assignments]))
    if not which.include_removed:
        query = query.where(Submission.removed_at.is_(None))
    if caller.is_instructor(course_id):
        if which.student is not None:
            query = query.where(Submission.student == which.student)
        if which.students is not None:
            query = query.where(Submission.student.in_(which.students))
    else:
        if {which.student, *(which.students or ())} - {None, caller.name}:
            raise Forbidden("students may only see their own submissions")
        query = query.where(Submission.student == caller.name)
    if which.uncollected:
        query = query.where(Submission.collected_at.is_(None))
    if which.before_due:
        query = query.join(Assignment, Submission.assignment_id == Assignment.id).where(
            sa.or_(Assignment.due_at.is_(None), Submission.received_at <= Assignment.due_at)
        )
    return query.order_by(
        Submission.assignment_id, Submission.student, Submission.received_at, Submission.id
    )


def _latest(submissions: list[Submission]) -> list[Submission]:
    latest: dict[str, Submission] = {}
    for submission in submissions:  # ordered by student, then time
        latest[submission.student] = submission
    return list(latest.values())


def load_options(files: bool, feedback: bool) -> list:
    options = []
    if files:
        options.append(selectinload(Submission.files))
    if feedback:
        options.append(selectinload(Submission.feedback).selectinload(Feedback.files))
    return options


def list_submissions(
    caller: Caller,
    assignment: Assignment,
    which: SubmissionFilter,
    *,
    files: bool = False,
    feedback: bool = False,
) -> list[Submission]:
    """Instructors see all (optionally one student's); students only their own."""
    return submissions_of(caller, [assignment], which, files=files, feedback=feedback)[
        assignment.id
    ]


def submissions_of(
    caller: Caller,
    assignments: Sequence[Assignment],
    which: SubmissionFilter,
    *,
    files: bool = False,
    feedback: bool = False,
) -> dict[int, list[Submission]]:
    """:func:`list_submissions` for several assignments of one course at once, in one
    statement (plus one per relation loaded), by assignment id."""
    if which.student is not None:
        check_name(which.student, "student", 255)
    if which.students is not None:
        if len(which.students) > MAX_STUDENTS:
            raise BadInput(f"at most {MAX_STUDENTS} students at once")
        for student in which.students:
            check_name(student, "student", 255)
    found: dict[int, list[Submission]] = {a.id: [] for a in assignments}
    if not assignments:
        return found
    query = _query(caller, assignments, which).options(*load_options(files, feedback))
    for submission in db.session.scalars(query):
        found[submission.assignment_id].append(submission)
    if which.latest_only:
        found = {i: _latest(rows) for i, rows in found.items()}
    return found


def collect(
    caller: Caller,
    course_id: str,
    assignment_name: str,
    which: SubmissionFilter,
    *,
    files: bool = True,
    feedback: bool = False,
) -> list[Submission]:
    """Mark the selected submissions collected and return them."""
    caller.require_instructor(course_id)
    assignment = get_assignment(caller, course_id, assignment_name)
    which = replace(which, include_removed=False)
    submissions = list_submissions(caller, assignment, which, files=files, feedback=feedback)
    now = utcnow()
    ids = [s.id for s in submissions if s.collected_at is None]
    if ids:
        db.session.execute(
            sa.update(Submission).where(Submission.id.in_(ids)).values(collected_at=now),
            execution_options={"synchronize_session": False},
        )
        for submission in submissions:
            if submission.collected_at is None:
                set_committed_value(submission, "collected_at", now)
    events.record(
        caller,
        "submission.collected",
        course_id,
        assignment_name,
        subject=f"{len(submissions)} submissions",
    )
    db.session.commit()
    return submissions


def remove_submissions(
    caller: Caller,
    course_id: str,
    assignment_name: str,
    student: str | None = None,
    timestamp: str | None = None,
) -> int:
    """Clear submissions from the inbound, as ``nbgrader list --inbound --remove`` does:
    their files are deleted; the record of each (student, timestamp) stays, with any
    feedback on it, so feedback can still be released and fetched as with nbgrader's own
    exchange, whose feedback does not live in the inbound. Every filter left out widens
    what is removed."""
    caller.require_instructor(course_id)
    assignment = get_assignment(caller, course_id, assignment_name)
    query = sa.select(Submission.id).where(
        Submission.assignment_id == assignment.id, Submission.removed_at.is_(None)
    )
    if student is not None:
        query = query.where(Submission.student == check_name(student, "student", 255))
    if timestamp is not None:
        query = query.where(Submission.timestamp == timestamp)
    ids = list(db.session.scalars(query))
    if ids:
        contents = file_hashes(File.submission_id.in_(ids))
        db.session.execute(sa.delete(File).where(File.submission_id.in_(ids)))
        db.session.execute(
            sa.update(Submission)
            .where(Submission.id.in_(ids))
            .values(removed_at=utcnow(), folders=[]),
            execution_options={"synchronize_session": False},
        )
        events.record(
            caller,
            "submission.removed",
            course_id,
            assignment_name,
            subject=f"{len(ids)} submissions" + (f" of {student}" if student else ""),
        )
        db.session.commit()
        collect_unused(contents)
    return len(ids)
