"""Database models: the exchange's metadata.

File bytes never live here except through the ``sql`` blob store's
:class:`BlobChunk` table; every other table holds names, times and hashes.
A release's or submission's ``folders`` are the empty folders it carries besides
its files (nbgrader's exchange copies those too).
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ngshare_gql.extensions import db


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Role(enum.Enum):
    INSTRUCTOR = "instructor"
    STUDENT = "student"


class Course(db.Model):
    __tablename__ = "course"

    id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(512), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    members: Mapped[list[Member]] = relationship(
        back_populates="course", cascade="all, delete-orphan", passive_deletes=True
    )
    assignments: Mapped[list[Assignment]] = relationship(
        back_populates="course", cascade="all, delete-orphan", passive_deletes=True
    )


class Member(db.Model):
    """A user's role in a course; a user may hold both roles in one course."""

    __tablename__ = "member"
    __table_args__ = (sa.UniqueConstraint("course_id", "user", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[str] = mapped_column(
        sa.ForeignKey("course.id", ondelete="CASCADE"), index=True
    )
    user: Mapped[str] = mapped_column(sa.String(255), index=True)
    role: Mapped[Role] = mapped_column(sa.Enum(Role, native_enum=False, length=16))
    first_name: Mapped[str | None] = mapped_column(sa.String(255))
    last_name: Mapped[str | None] = mapped_column(sa.String(255))
    email: Mapped[str | None] = mapped_column(sa.String(255))

    course: Mapped[Course] = relationship(back_populates="members")


class Assignment(db.Model):
    __tablename__ = "assignment"
    __table_args__ = (sa.UniqueConstraint("course_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[str] = mapped_column(
        sa.ForeignKey("course.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(255))
    released: Mapped[bool] = mapped_column(default=False)
    released_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]
    folders: Mapped[list[str]] = mapped_column(sa.JSON, default=list, server_default="[]")

    course: Mapped[Course] = relationship(back_populates="assignments")
    files: Mapped[list[File]] = relationship(
        back_populates="assignment",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="File.path",
    )
    submissions: Mapped[list[Submission]] = relationship(
        back_populates="assignment", cascade="all, delete-orphan", passive_deletes=True
    )


class Submission(db.Model):
    __tablename__ = "submission"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("assignment.id", ondelete="CASCADE"), index=True
    )
    student: Mapped[str] = mapped_column(sa.String(255), index=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    timestamp: Mapped[str] = mapped_column(sa.String(64))
    late: Mapped[bool] = mapped_column(default=False)
    collected_at: Mapped[datetime | None]
    # Cleared from the inbound (``nbgrader list --inbound --remove``): its files are gone,
    # the record stays so that feedback on it can still be released and fetched.
    removed_at: Mapped[datetime | None]
    folders: Mapped[list[str]] = mapped_column(sa.JSON, default=list, server_default="[]")

    assignment: Mapped[Assignment] = relationship(back_populates="submissions")
    files: Mapped[list[File]] = relationship(
        back_populates="submission",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="File.path",
    )
    feedback: Mapped[list[Feedback]] = relationship(
        back_populates="submission",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Feedback.notebook",
    )


class Feedback(db.Model):
    """Feedback on one notebook of one submission; releasing it again replaces it."""

    __tablename__ = "feedback"
    __table_args__ = (sa.UniqueConstraint("submission_id", "notebook"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        sa.ForeignKey("submission.id", ondelete="CASCADE"), index=True
    )
    notebook: Mapped[str] = mapped_column(sa.String(255))
    released_at: Mapped[datetime] = mapped_column(default=utcnow)

    submission: Mapped[Submission] = relationship(back_populates="feedback")
    files: Mapped[list[File]] = relationship(
        back_populates="feedback",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="File.path",
    )


class File(db.Model):
    """A file of exactly one release, submission or feedback; its bytes are a blob."""

    __tablename__ = "file"
    __table_args__ = (
        sa.CheckConstraint(
            "(CASE WHEN assignment_id IS NULL THEN 0 ELSE 1 END)"
            " + (CASE WHEN submission_id IS NULL THEN 0 ELSE 1 END)"
            " + (CASE WHEN feedback_id IS NULL THEN 0 ELSE 1 END) = 1",
            name="one_owner",
        ),
        # A download URL names a file by id: SQLite must never hand a deleted file's id
        # to a new one (PostgreSQL's sequences never do).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("assignment.id", ondelete="CASCADE"), index=True
    )
    submission_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("submission.id", ondelete="CASCADE"), index=True
    )
    feedback_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("feedback.id", ondelete="CASCADE"), index=True
    )
    path: Mapped[str] = mapped_column(sa.String(1024))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    # The uploader's modification time (naive UTC), given back to whoever downloads it,
    # as nbgrader's exchange keeps it by copying with shutil.copytree; None if not said.
    modified_at: Mapped[datetime | None]

    assignment: Mapped[Assignment | None] = relationship(back_populates="files")
    submission: Mapped[Submission | None] = relationship(back_populates="files")
    feedback: Mapped[Feedback | None] = relationship(back_populates="files")


class Blob(db.Model):
    """A stored content, once per sha256 whatever the number of files using it."""

    __tablename__ = "blob"

    sha256: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BlobChunk(db.Model):
    """Bytes of a blob for the ``sql`` blob store, in bounded chunks."""

    __tablename__ = "blob_chunk"

    sha256: Mapped[str] = mapped_column(
        sa.ForeignKey("blob.sha256", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)


class Event(db.Model):
    """The audit log: who did what to which course and assignment, and when."""

    __tablename__ = "event"
    # A course's log is read a page at a time, newest first, and for its instructors
    # from the course id's last "course.deleted" on: both found by index, without
    # reading the rest of the log (filters by assignment or actor read on until the
    # page is full).
    __table_args__ = (
        sa.Index("ix_event_course_id_at", "course_id", "at", "id"),
        sa.Index("ix_event_course_id_action", "course_id", "action"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(sa.String(255))
    action: Mapped[str] = mapped_column(sa.String(64))
    course_id: Mapped[str] = mapped_column(sa.String(128))
    assignment: Mapped[str | None] = mapped_column(sa.String(255))
    subject: Mapped[str | None] = mapped_column(sa.String(1024))
