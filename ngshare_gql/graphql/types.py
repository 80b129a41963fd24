"""GraphQL object types.  Each wraps a model and resolves nested data through the domain,
which checks the caller's role in the course at every level."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from datetime import datetime

import strawberry

from ngshare_gql import models
from ngshare_gql.domain import assignments, courses, feedback, submissions
from ngshare_gql.graphql.context import Info, reads_only, selects
from ngshare_gql.graphql.scalars import BigInt, as_utc


@strawberry.enum(description="A user's role in a course.")
class Role(enum.Enum):
    INSTRUCTOR = "instructor"
    STUDENT = "student"

    @property
    def model(self) -> models.Role:
        return models.Role(self.value)

    @classmethod
    def of(cls, role: models.Role) -> Role:
        return cls(role.value)


@strawberry.type(description="Roles the caller holds in one course.")
class CourseRoles:
    course_id: str
    roles: list[Role]


@strawberry.type(description="The caller.")
class Me:
    name: str
    admin: bool
    roles: list[CourseRoles]


@strawberry.type(description="A stored file; download its bytes with a GET of `url`.")
class File:
    id: strawberry.ID
    path: str
    size: BigInt
    sha256: str
    modified_at: datetime | None = strawberry.field(
        description="When it was last modified where it was uploaded from, as the uploader"
        " said; null if not said."
    )

    @strawberry.field(description="Where to GET the bytes (same authorization as this field).")
    def url(self, info: Info) -> str:
        return f"{info.context.prefix}files/{self.id}"

    @classmethod
    def of(cls, file: models.File) -> File:
        return cls(
            id=strawberry.ID(str(file.id)), path=file.path, size=file.size, sha256=file.sha256,
            modified_at=as_utc(file.modified_at),
        )


FOLDERS = "Empty folders carried besides the files (nbgrader's exchange copies them too)."


def files_of(rows: list[models.File]) -> list[File]:
    return [File.of(row) for row in rows]


@strawberry.type(description="A course member on the roster.")
class Member:
    user: str
    role: Role
    first_name: str | None
    last_name: str | None
    email: str | None

    @classmethod
    def of(cls, m: models.Member) -> Member:
        return cls(
            user=m.user,
            role=Role.of(m.role),
            first_name=m.first_name,
            last_name=m.last_name,
            email=m.email,
        )


@strawberry.type(description="Feedback on one notebook of one submission.")
class Feedback:
    model: strawberry.Private[models.Feedback]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.model.id))

    @strawberry.field
    def notebook(self) -> str:
        return self.model.notebook

    @strawberry.field
    def student(self) -> str:
        return self.model.submission.student

    @strawberry.field(description="The `timestamp` of the submission this feedback is for.")
    def timestamp(self) -> str:
        return self.model.submission.timestamp

    @strawberry.field
    def submission_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.model.submission_id))

    @strawberry.field
    def released_at(self) -> datetime:
        return as_utc(self.model.released_at)

    @strawberry.field
    def files(self) -> list[File]:
        return files_of(self.model.files)


@strawberry.type(description="One hand-in of an assignment by a student.")
class Submission:
    model: strawberry.Private[models.Submission]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.model.id))

    @strawberry.field
    def student(self) -> str:
        return self.model.student

    @strawberry.field(description="When the server received it (UTC).")
    def received_at(self) -> datetime:
        return as_utc(self.model.received_at)

    @strawberry.field(description="The client's `timestamp.txt` value, as sent.")
    def timestamp(self) -> str:
        return self.model.timestamp

    @strawberry.field(description="Received after the assignment's due time.")
    def late(self) -> bool:
        return self.model.late

    @strawberry.field
    def collected_at(self) -> datetime | None:
        return as_utc(self.model.collected_at)

    @strawberry.field(
        description="When it was cleared from the inbound (`removeSubmissions`): its files"
        " are gone; feedback on it stays."
    )
    def removed_at(self) -> datetime | None:
        return as_utc(self.model.removed_at)

    @strawberry.field
    def files(self) -> list[File]:
        return files_of(self.model.files)

    @strawberry.field(description=FOLDERS)
    def folders(self) -> list[str]:
        return list(self.model.folders)

    @strawberry.field
    def feedback(self) -> list[Feedback]:
        return [Feedback(model=f) for f in self.model.feedback]


@strawberry.input(description="Which submissions to list or collect.")
class SubmissionFilter:
    student: str | None = None
    students: list[str] | None = strawberry.field(
        default=None, description=f"Any of these students (at most {submissions.MAX_STUDENTS})."
    )
    latest_only: bool = strawberry.field(default=False, description="Each student's latest only.")
    uncollected: bool = strawberry.field(default=False, description="Not collected before.")
    before_due: bool = strawberry.field(
        default=False, description="Received by the due time (when one is set)."
    )
    include_removed: bool = strawberry.field(
        default=False,
        description="Also those cleared from the inbound (`removedAt` set, no files left);"
        " listing only: collecting never takes them.",
    )

    def model(self) -> submissions.SubmissionFilter:
        return submissions.SubmissionFilter(
            student=self.student,
            students=None if self.students is None else tuple(self.students),
            latest_only=self.latest_only,
            uncollected=self.uncollected,
            before_due=self.before_due,
            include_removed=self.include_removed,
        )


@strawberry.type(description="An assignment of a course.")
class Assignment:
    model: strawberry.Private[models.Assignment]
    # The assignments listed with this one (``Course.assignments``), whose submissions
    # or feedback are loaded together, in one statement, when the first is asked for.
    listed_with: strawberry.Private[tuple[models.Assignment, ...]] = ()

    @strawberry.field
    def course_id(self) -> str:
        return self.model.course_id

    @strawberry.field
    def name(self) -> str:
        return self.model.name

    @strawberry.field
    def released(self) -> bool:
        return self.model.released

    @strawberry.field
    def released_at(self) -> datetime | None:
        return as_utc(self.model.released_at)

    @strawberry.field
    def due_at(self) -> datetime | None:
        return as_utc(self.model.due_at)

    @strawberry.field(description="The released files.")
    def files(self) -> list[File]:
        return files_of(self.model.files)

    @strawberry.field(description=FOLDERS)
    def folders(self) -> list[str]:
        return list(self.model.folders)

    def _batched(
        self, info: Info, key: tuple, load: Callable[[Sequence[models.Assignment]], dict]
    ) -> list:
        """``load(assignments)[my id]``, loaded once for all the assignments listed with
        this one (they share one ``listed_with``, which keys the load)."""
        if not self.listed_with:
            return load((self.model,))[self.model.id]
        loaded = info.context.once((*key, self.listed_with), lambda: load(self.listed_with))
        return loaded[self.model.id]

    @strawberry.field(description="Instructors: all submissions; students: their own.")
    def submissions(self, info: Info, filter: SubmissionFilter | None = None) -> list[Submission]:
        which = (filter or SubmissionFilter()).model()
        files, with_feedback = selects(info, "files"), selects(info, "feedback")
        rows = self._batched(
            info,
            ("submissions", which, files, with_feedback),
            lambda assignments: submissions.submissions_of(
                info.context.caller, assignments, which, files=files, feedback=with_feedback
            ),
        )
        return [Submission(model=s) for s in rows]

    @strawberry.field(description="Instructors: all feedback; students: their own.")
    def feedback(self, info: Info, student: str | None = None) -> list[Feedback]:
        files = selects(info, "files")
        rows = self._batched(
            info,
            ("feedback", student, files),
            lambda assignments: feedback.feedback_of(
                info.context.caller, assignments, student, files=files
            ),
        )
        return [Feedback(model=f) for f in rows]


@strawberry.type(description="A course.")
class Course:
    model: strawberry.Private[models.Course]
    # The ids of the courses listed with this one (``courses``), whose assignments are
    # loaded together, in one statement, when the first of them is asked for.
    listed_with: strawberry.Private[tuple[str, ...]] = ()

    @strawberry.field
    def id(self) -> str:
        return self.model.id

    @strawberry.field
    def title(self) -> str:
        return self.model.title or self.model.id

    @strawberry.field(description="The caller's roles in this course.")
    def my_roles(self, info: Info) -> list[Role]:
        return sorted(
            (Role.of(r) for r in info.context.caller.roles_in(self.model.id)),
            key=lambda r: r.value,
        )

    @strawberry.field(description="Instructors: all; students: released or submitted to.")
    def assignments(self, info: Info, released: bool | None = None) -> list[Assignment]:
        with_files = selects(info, "files")
        course_ids = self.listed_with or (self.model.id,)

        def load() -> dict[str, list[models.Assignment]]:
            return assignments.list_assignments(
                info.context.caller, course_ids, released=released, with_files=with_files
            )

        key = ("assignments", course_ids, released, with_files)
        rows = info.context.once(key, load) if self.listed_with else load()
        mine = tuple(rows[self.model.id]) if reads_only(info) else ()
        return [Assignment(model=a, listed_with=mine) for a in rows[self.model.id]]

    @strawberry.field
    def assignment(self, info: Info, name: str) -> Assignment:
        return Assignment(
            model=assignments.get_assignment(info.context.caller, self.model.id, name)
        )

    @strawberry.field(description="The roster (instructors only).")
    def roster(self, info: Info, role: Role | None = None) -> list[Member]:
        rows = courses.roster(info.context.caller, self.model.id, role.model if role else None)
        return [Member.of(m) for m in rows]


@strawberry.type(description="An entry of the audit log.")
class Event:
    at: datetime
    actor: str
    action: str
    course_id: str
    assignment: str | None
    subject: str | None

    @classmethod
    def of(cls, e: models.Event) -> Event:
        return cls(
            at=as_utc(e.at),
            actor=e.actor,
            action=e.action,
            course_id=e.course_id,
            assignment=e.assignment,
            subject=e.subject,
        )
