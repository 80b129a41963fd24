"""State changes.  Each resolver converts its input and calls one domain function."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from ngshare_gql.domain import assignments, courses, submissions
from ngshare_gql.domain import feedback as feedback_domain
from ngshare_gql.graphql.context import Info, selects
from ngshare_gql.graphql.inputs import FeedbackInput, FileInput, MemberInput, specs
from ngshare_gql.graphql.scalars import from_client
from ngshare_gql.graphql.types import (
    Assignment,
    Course,
    Feedback,
    Member,
    Role,
    Submission,
    SubmissionFilter,
)

FOLDERS = "Empty folders to carry besides the files (paths as for files)."


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a course (admins).")
    def create_course(self, info: Info, id: str, title: str | None = None) -> Course:
        return Course(model=courses.create_course(info.context.caller, id, title))

    @strawberry.mutation(description="Delete a course with everything in it (admins).")
    def delete_course(self, info: Info, id: str) -> bool:
        courses.delete_course(info.context.caller, id)
        return True

    @strawberry.mutation(description="Add or update members in bulk (instructors).")
    def add_members(
        self, info: Info, course_id: str, role: Role, members: list[MemberInput]
    ) -> list[Member]:
        rows = courses.add_members(
            info.context.caller, course_id, role.model, [m.spec() for m in members]
        )
        return [Member.of(m) for m in rows]

    @strawberry.mutation(description="Remove members (of one role, or of any); returns how many.")
    def remove_members(
        self, info: Info, course_id: str, users: list[str], role: Role | None = None
    ) -> int:
        return courses.remove_members(
            info.context.caller, course_id, users, role.model if role else None
        )

    @strawberry.mutation(
        description="Release an assignment; `force` replaces a released one atomically."
    )
    def release_assignment(
        self,
        info: Info,
        course_id: str,
        name: str,
        files: list[FileInput],
        due_at: datetime | None = None,
        force: bool = False,
        folders: Annotated[list[str] | None, strawberry.argument(description=FOLDERS)] = None,
    ) -> Assignment:
        assignment = assignments.release(
            info.context.caller,
            course_id,
            name,
            specs(files),
            from_client(due_at, "dueAt"),
            force,
            folders or [],
        )
        return Assignment(model=assignment)

    @strawberry.mutation(description="Withdraw a release; submissions and feedback stay.")
    def unrelease_assignment(self, info: Info, course_id: str, name: str) -> Assignment:
        return Assignment(model=assignments.unrelease(info.context.caller, course_id, name))

    @strawberry.mutation(description="Fetch a released assignment (recorded in the audit log).")
    def fetch_assignment(self, info: Info, course_id: str, name: str) -> Assignment:
        return Assignment(model=assignments.fetch(info.context.caller, course_id, name))

    @strawberry.mutation(description="Hand in an assignment (students).")
    def submit_assignment(
        self,
        info: Info,
        course_id: str,
        assignment: str,
        files: list[FileInput],
        timestamp: str | None = None,
        folders: Annotated[list[str] | None, strawberry.argument(description=FOLDERS)] = None,
    ) -> Submission:
        submission = submissions.submit(
            info.context.caller, course_id, assignment, specs(files), timestamp, folders or []
        )
        return Submission(model=submission)

    @strawberry.mutation(description="Return submissions and mark them collected (instructors).")
    def collect_submissions(
        self,
        info: Info,
        course_id: str,
        assignment: str,
        filter: SubmissionFilter | None = None,
    ) -> list[Submission]:
        rows = submissions.collect(
            info.context.caller,
            course_id,
            assignment,
            (filter or SubmissionFilter()).model(),
            files=selects(info, "files"),
            feedback=selects(info, "feedback"),
        )
        return [Submission(model=s) for s in rows]

    @strawberry.mutation(
        description=(
            "Clear submissions from the inbound (instructors): their files are deleted, and"
            " they are no longer listed or collected; feedback on them stays releasable and"
            " fetchable. Returns how many."
        )
    )
    def remove_submissions(
        self,
        info: Info,
        course_id: str,
        assignment: str,
        student: str | None = None,
        timestamp: str | None = None,
    ) -> int:
        return submissions.remove_submissions(
            info.context.caller, course_id, assignment, student, timestamp
        )

    @strawberry.mutation(description="Release feedback in bulk; again for a notebook replaces it.")
    def release_feedback(
        self, info: Info, course_id: str, assignment: str, feedback: list[FeedbackInput]
    ) -> list[Feedback]:
        rows = feedback_domain.release_feedback(
            info.context.caller, course_id, assignment, [f.spec() for f in feedback]
        )
        return [Feedback(model=f) for f in rows]

    @strawberry.mutation(description="Withdraw feedback; returns how many notebooks' feedback.")
    def remove_feedback(
        self,
        info: Info,
        course_id: str,
        assignment: str,
        student: str | None = None,
        timestamp: str | None = None,
        notebook: str | None = None,
    ) -> int:
        return feedback_domain.remove_feedback(
            info.context.caller, course_id, assignment, student, timestamp, notebook
        )

    @strawberry.mutation(description="Your feedback with its files (recorded in the audit log).")
    def fetch_feedback(self, info: Info, course_id: str, assignment: str) -> list[Feedback]:
        rows = feedback_domain.fetch_feedback(info.context.caller, course_id, assignment)
        return [Feedback(model=f) for f in rows]
