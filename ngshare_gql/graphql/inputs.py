"""GraphQL input types, each turned into the domain's plain dataclasses."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.file_uploads import Upload

from ngshare_gql.domain.courses import MemberSpec
from ngshare_gql.domain.feedback import FeedbackSpec
from ngshare_gql.domain.files import FileSpec
from ngshare_gql.errors import BadInput
from ngshare_gql.graphql.scalars import BigInt, from_client
from ngshare_gql.storage.staging import StagedFile


@strawberry.input(
    description=(
        "A file to store.  `content` (a multipart upload) may be left out when the "
        "server already holds `sha256` for you: see `missingContent`."
    )
)
class FileInput:
    path: str
    sha256: str
    size: BigInt
    content: Upload | None = None
    modified_at: datetime | None = strawberry.field(
        default=None,
        description="When the file was last modified where it comes from; whoever"
        " downloads it may give it that time (nbgrader's exchange does). A time"
        " without zone is UTC.",
    )

    def spec(self) -> FileSpec:
        content = None
        if self.content is not None:
            content = getattr(self.content, "stream", None)
            if not isinstance(content, StagedFile):
                raise BadInput(f"file {self.path!r}: content must be a multipart file part")
        return FileSpec(
            path=self.path, sha256=self.sha256, size=self.size, content=content,
            modified_at=from_client(self.modified_at, f"file {self.path!r}: modifiedAt"),
        )


def specs(files: list[FileInput]) -> list[FileSpec]:
    return [f.spec() for f in files]


@strawberry.input(description="A user to put on a course roster.")
class MemberInput:
    user: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None

    def spec(self) -> MemberSpec:
        return MemberSpec(
            user=self.user, first_name=self.first_name, last_name=self.last_name, email=self.email
        )


@strawberry.input(
    description=(
        "Feedback on one notebook of a submission, named by student and the submission's "
        "`timestamp` (the latest submission when left out)."
    )
)
class FeedbackInput:
    student: str
    notebook: str
    files: list[FileInput]
    timestamp: str | None = None

    def spec(self) -> FeedbackSpec:
        return FeedbackSpec(
            student=self.student,
            notebook=self.notebook,
            timestamp=self.timestamp,
            files=specs(self.files),
        )
