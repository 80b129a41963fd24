"""Feedback: instructors return it per submission and notebook, students fetch their own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import contains_eager, selectinload

from ngshare_gql.domain import events
from ngshare_gql.domain.assignments import course_of, get_assignment
from ngshare_gql.domain.files import (
    FileSpec,
    check_total_size,
    collect_unused,
    file_hashes,
    store_files,
)
from ngshare_gql.domain.validation import check_name
from ngshare_gql.errors import BadInput, Forbidden, NotFound
from ngshare_gql.extensions import db
from ngshare_gql.models import Assignment, Feedback, File, Submission, utcnow
from ngshare_gql.roles import Caller


@dataclass
class FeedbackSpec:
    """Feedback on one notebook of the submission ``student`` made at ``timestamp``
    (their latest one when no timestamp is given)."""

    student: str
    notebook: str
    timestamp: str | None = None
    files: list[FileSpec] = field(default_factory=list)


def _submissions_for(assignment: Assignment, specs: list[FeedbackSpec]) -> list[Submission]:
    """The submission each spec names, found with one query for the whole batch."""
    students = {spec.student for spec in specs}
    rows = db.session.scalars(
        sa.select(Submission)
        .where(Submission.assignment_id == assignment.id, Submission.student.in_(students))
        .order_by(Submission.received_at, Submission.id)
    )
    by_timestamp: dict[tuple[str, str], Submission] = {}
    latest: dict[str, Submission] = {}
    for submission in rows:
        by_timestamp[(submission.student, submission.timestamp)] = submission
        latest[submission.student] = submission
    found = []
    for spec in specs:
        submission = (
            latest.get(spec.student)
            if spec.timestamp is None
            else by_timestamp.get((spec.student, spec.timestamp))
        )
        if submission is None:
            when = f" at {spec.timestamp!r}" if spec.timestamp else ""
            raise NotFound(f"no submission of {assignment.name!r} by {spec.student!r}{when}")
        found.append(submission)
    return found


def release_feedback(
    caller: Caller, course_id: str, assignment_name: str, specs: list[FeedbackSpec]
) -> list[Feedback]:
    """Release feedback in bulk; releasing a notebook's feedback again replaces it."""
    caller.require_instructor(course_id)
    assignment = get_assignment(caller, course_id, assignment_name)
    for spec in specs:
        check_name(spec.student, "student", 255)
        check_name(spec.notebook, "notebook", 255)
    check_total_size([f for spec in specs for f in spec.files])
    submissions = _submissions_for(assignment, specs)
    keys = [(s.id, spec.notebook) for s, spec in zip(submissions, specs, strict=True)]
    if len(set(keys)) != len(keys):
        raise BadInput("the same submission and notebook appear twice")
    old = db.session.scalars(
        sa.select(Feedback).where(
            Feedback.submission_id.in_({s.id for s in submissions}),
            Feedback.notebook.in_({spec.notebook for spec in specs}),
        )
    )
    replaced = [f for f in old if (f.submission_id, f.notebook) in keys]
    contents = file_hashes(File.feedback_id.in_([f.id for f in replaced]))
    # Store before deleting what is replaced: releasing the same feedback again may
    # reuse its content without sending it, which the replaced rows make readable.
    uploaded = frozenset(f.sha256 for spec in specs for f in spec.files if f.content is not None)
    rows = [store_files(caller, course_id, spec.files, uploaded) for spec in specs]
    for feedback in replaced:
        db.session.delete(feedback)
    db.session.flush()
    now = utcnow()
    released = []
    for submission, spec, files in zip(submissions, specs, rows, strict=True):
        feedback = Feedback(
            submission=submission,
            notebook=spec.notebook,
            released_at=now,
            files=files,
        )
        db.session.add(feedback)
        released.append(feedback)
    if specs:
        students = ", ".join(sorted({spec.student for spec in specs}))
        events.record(
            caller,
            "feedback.released",
            course_id,
            assignment_name,
            subject=f"{len(specs)} notebooks for {students}",
        )
    db.session.commit()
    collect_unused(contents)
    return released


def remove_feedback(
    caller: Caller,
    course_id: str,
    assignment_name: str,
    student: str | None = None,
    timestamp: str | None = None,
    notebook: str | None = None,
) -> int:
    """Withdraw feedback; every filter left out widens what is removed."""
    caller.require_instructor(course_id)
    assignment = get_assignment(caller, course_id, assignment_name)
    submissions = sa.select(Submission.id).where(Submission.assignment_id == assignment.id)
    if student is not None:
        submissions = submissions.where(Submission.student == student)
    if timestamp is not None:
        submissions = submissions.where(Submission.timestamp == timestamp)
    query = sa.select(Feedback).where(Feedback.submission_id.in_(submissions))
    if notebook is not None:
        query = query.where(Feedback.notebook == notebook)
    removed = list(db.session.scalars(query))
    contents = file_hashes(File.feedback_id.in_([f.id for f in removed]))
    for feedback in removed:
        db.session.delete(feedback)
    if removed:
        events.record(
            caller,
            "feedback.removed",
            course_id,
            assignment_name,
            subject=f"{len(removed)} notebooks" + (f" of {student}" if student else ""),
        )
    db.session.commit()
    collect_unused(contents)
    return len(removed)


def list_feedback(
    caller: Caller, assignment: Assignment, student: str | None = None, *, files: bool = False
) -> list[Feedback]:
    """Instructors see all feedback of an assignment; students only their own."""
    return feedback_of(caller, [assignment], student, files=files)[assignment.id]


def feedback_of(
    caller: Caller,
    assignments: Sequence[Assignment],
    student: str | None = None,
    *,
    files: bool = False,
) -> dict[int, list[Feedback]]:
    """:func:`list_feedback` for several assignments of one course at once, in one
    statement (plus one per relation loaded), by assignment id."""
    found: dict[int, list[Feedback]] = {a.id: [] for a in assignments}
    if not assignments:
        return found
    if not caller.is_instructor(course_of(assignments)):
        if student not in (None, caller.name):
            raise Forbidden("students may only see their own feedback")
        student = caller.name
    query = (
        sa.select(Feedback)
        .join(Feedback.submission)
        .where(Submission.assignment_id.in_([a.id for a in assignments]))
        .options(contains_eager(Feedback.submission))
        .order_by(
            Submission.assignment_id, Submission.student, Submission.received_at, Feedback.notebook
        )
    )
    if student is not None:
        query = query.where(Submission.student == student)
    if files:
        query = query.options(selectinload(Feedback.files))
    for feedback in db.session.scalars(query):
        found[feedback.submission.assignment_id].append(feedback)
    return found


def fetch_feedback(caller: Caller, course_id: str, assignment_name: str) -> list[Feedback]:
    """The caller's own feedback with its files, recorded as fetched."""
    caller.require_course(course_id)
    assignment = get_assignment(caller, course_id, assignment_name)
    found = list_feedback(caller, assignment, caller.name, files=True)
    events.record(caller, "feedback.fetched", course_id, assignment_name)
    db.session.commit()
    return found
