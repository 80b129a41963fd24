"""Files in and out: check uploads against their declared hash, reuse known content.

A client declares each file as (path, sha256, size) and sends the bytes only
when the server lacks them.  Content may be reused without sending it only when
the caller could already read it, so a known hash never leaks someone else's file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask import current_app

from ngshare_gql.domain.validation import check_layout, check_path, check_sha256
from ngshare_gql.errors import BadInput, NotFound, PayloadTooLarge
from ngshare_gql.extensions import db
from ngshare_gql.models import Assignment, Feedback, File, Submission
from ngshare_gql.roles import Caller
from ngshare_gql.storage.gc import collect_dereferenced
from ngshare_gql.storage.staging import StagedFile


@dataclass
class FileSpec:
    """One file of an upload as the client declares it."""

    path: str
    sha256: str
    size: int
    content: StagedFile | None = None
    modified_at: datetime | None = None  # naive UTC


def _settings():
    return current_app.extensions["ngshare"].settings


def blob_store():
    return current_app.extensions["ngshare"].blobs


def readable_hashes(caller: Caller, course_id: str, hashes: set[str]) -> set[str]:
    """Which of ``hashes`` the caller may already read in this course."""
    if not hashes:
        return set()
    released = (
        sa.select(File.sha256)
        .join(Assignment, File.assignment_id == Assignment.id)
        .where(Assignment.course_id == course_id, Assignment.released, File.sha256.in_(hashes))
    )
    submitted = (
        sa.select(File.sha256)
        .join(Submission, File.submission_id == Submission.id)
        .join(Assignment, Submission.assignment_id == Assignment.id)
        .where(Assignment.course_id == course_id, File.sha256.in_(hashes))
    )
    queries = [released]
    if caller.is_instructor(course_id):
        queries.append(submitted)
        queries.append(
            sa.select(File.sha256)
            .join(Feedback, File.feedback_id == Feedback.id)
            .join(Submission, Feedback.submission_id == Submission.id)
            .join(Assignment, Submission.assignment_id == Assignment.id)
            .where(Assignment.course_id == course_id, File.sha256.in_(hashes))
        )
        queries.append(
            sa.select(File.sha256)
            .join(Assignment, File.assignment_id == Assignment.id)
            .where(Assignment.course_id == course_id, File.sha256.in_(hashes))
        )
    else:
        queries.append(submitted.where(Submission.student == caller.name))
    return set(db.session.scalars(sa.union(*queries)))


def missing_content(caller: Caller, course_id: str, hashes: list[str]) -> list[str]:
    """The hashes whose bytes the caller must send (the server lacks them, or they
    are not the caller's to reuse)."""
    caller.require_course(course_id)
    wanted = {check_sha256(h) for h in hashes}
    reusable = readable_hashes(caller, course_id, wanted)
    reusable -= blob_store().missing(reusable)
    return [h for h in dict.fromkeys(hashes) if h not in reusable]


def check_total_size(specs: list[FileSpec]) -> None:
    """The per-operation limit, over all files an operation declares."""
    limit = _settings().max_upload_size
    total = sum(spec.size for spec in specs)
    if total > limit:
        raise PayloadTooLarge(f"the upload is {total} bytes, over the limit of {limit} bytes")


def store_files(
    caller: Caller,
    course_id: str,
    specs: list[FileSpec],
    uploaded: frozenset[str] = frozenset(),
) -> list[File]:
    """Validate an upload and store its bytes; returns unsaved File rows.

    Everything is checked before any byte is stored, and the caller's transaction
    is rolled back on any error, so a bad upload leaves nothing behind.  Content
    sent once in an operation serves every file with that hash in it; ``uploaded``
    names the hashes sent elsewhere in the same operation.
    """
    settings = _settings()
    for spec in specs:
        check_path(spec.path)
        check_sha256(spec.sha256)
        if not isinstance(spec.size, int) or spec.size < 0:
            raise BadInput(f"file {spec.path!r}: size must be a non-negative integer")
        if spec.size > settings.max_file_size:
            raise PayloadTooLarge(
                f"file {spec.path!r} is {spec.size} bytes, over the limit of "
                f"{settings.max_file_size} bytes per file"
            )
    check_layout([spec.path for spec in specs])
    check_total_size(specs)
    for spec in specs:
        if spec.content is not None and (
            spec.content.sha256 != spec.sha256 or spec.content.size != spec.size
        ):
            raise BadInput(
                f"file {spec.path!r}: content does not match the declared sha256 and size "
                f"(received {spec.content.size} bytes with sha256 {spec.content.sha256})"
            )
    sent = {spec.sha256 for spec in specs if spec.content is not None} | uploaded
    without_content = {spec.sha256 for spec in specs if spec.content is None} - sent
    store = blob_store()
    if without_content:
        # Locked until commit, so garbage collection cannot remove them meanwhile.
        reusable = store.lock(readable_hashes(caller, course_id, without_content))
        lacking = without_content - reusable
        if lacking:
            raise BadInput(
                "content must be sent for files the server does not hold for you: "
                + ", ".join(sorted(s.path for s in specs if s.sha256 in lacking)[:10])
            )
    stored: set[str] = set()
    for spec in sorted(specs, key=lambda s: s.sha256):  # one lock order: no deadlocks
        if spec.content is not None and spec.sha256 not in stored:
            store.put(spec.content)
            stored.add(spec.sha256)
    return [
        File(path=s.path, sha256=s.sha256, size=s.size, modified_at=s.modified_at) for s in specs
    ]


def file_hashes(*conditions: sa.ColumnElement[bool]) -> set[str]:
    """The contents of the files matching ``conditions``: taken before an operation
    deletes files, so that :func:`collect_unused` can check them afterwards."""
    return set(db.session.scalars(sa.select(File.sha256).where(*conditions).distinct()))


def collect_unused(hashes: set[str]) -> None:
    """After a commit that deleted files: remove the contents nothing uses any more."""
    collect_dereferenced(blob_store(), hashes)


# A file with what deciding on its download needs, in one statement: the course, and
# whether it is released (an assignment's file) or whose it is (a submission's file,
# directly or through feedback).
_FILE_ACCESS = (
    sa.select(File, Assignment.course_id, Assignment.released, Submission.student)
    .outerjoin(Feedback, File.feedback_id == Feedback.id)
    .outerjoin(
        Submission, Submission.id == sa.func.coalesce(File.submission_id, Feedback.submission_id)
    )
    .join(
        Assignment, Assignment.id == sa.func.coalesce(File.assignment_id, Submission.assignment_id)
    )
    .where(File.id == sa.bindparam("file_id"))
)


def readable_file(caller: Caller, file_id: int) -> File:
    """A file the caller may download: the same rules as the fields that list it.

    Whatever the reason for a refusal, it is NOT_FOUND: a download URL tells an
    outsider nothing, not even that the file exists.
    """
    row = db.session.execute(_FILE_ACCESS, {"file_id": file_id}).one_or_none()
    if row is None:
        raise NotFound("no such file")
    file, course_id, released, student = row
    if file.assignment_id is not None:  # released material
        allowed = caller.can_see(course_id) and (released or caller.is_instructor(course_id))
    else:  # a submission or its feedback
        allowed = caller.is_instructor(course_id) or (
            student == caller.name and caller.can_see(course_id)
        )
    if not allowed:
        raise NotFound("no such file")
    return file
