"""``nbgrader submit``: upload ./<assignment> with timestamp.txt and submission_secret.txt,
and keep the same copy in the local cache that ``list --cached`` and feedback use."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import tempfile

from nbgrader.exchange.abc import ExchangeSubmit as ABCExchangeSubmit
from traitlets import Bool

from ngshare_gql.nbgrader.exchange import Exchange

PLAN = """query($c: String!, $a: String!, $h: [String!]!) {
  course(id: $c) { assignment(name: $a) { released files { path } } }
  missingContent(courseId: $c, sha256: $h)
}"""

SUBMIT = """mutation($c: String!, $a: String!, $files: [FileInput!]!, $ts: String,
                    $folders: [String!]) {
  submitAssignment(courseId: $c, assignment: $a, files: $files, timestamp: $ts,
                   folders: $folders) {
    student timestamp
  }
}"""

#: Written by submit next to the student's files, as nbgrader's default exchange does.
EXTRA = ("timestamp.txt", "submission_secret.txt")


class ExchangeSubmit(Exchange, ABCExchangeSubmit):
    add_random_string = Bool(
        True, help="Accepted for configs of nbgrader's default exchange; unused."
    ).tag(config=True)

    def init_src(self) -> None:
        root = self.local_root(self.coursedir.course_id, self.coursedir.assignment_id)
        self.src_path = os.path.abspath(os.path.join(self.assignment_dir, root))
        self.coursedir.assignment_id = os.path.split(self.src_path)[-1]
        if not os.path.isdir(self.src_path):
            others = self.local_root(self.coursedir.course_id, "*")
            found = glob.glob(os.path.abspath(os.path.join(self.assignment_dir, others)))
            self.assignment_not_found(self.src_path, found)

    def init_dest(self) -> None:
        course = self.require_course()
        if not self.authenticator.has_access(self.coursedir.student_id, course):
            self.fail("You do not have access to this course.")
        self.cache_path = os.path.join(self.cache, course)
        if self.coursedir.student_id != "*":
            student_id = self.coursedir.student_id
            if "*" in student_id or "+" in student_id:
                self.fail(f"The student ID should contain no '*' nor '+'; got {student_id}")
            if student_id != self.me:
                self.log.warning(
                    "The exchange records this submission under your JupyterHub identity "
                    "'%s', not '%s' (that name only labels the local cache)",
                    self.me,
                    student_id,
                )
        else:
            student_id = self.me
        self.assignment_filename = f"{student_id}+{self.coursedir.assignment_id}+{self.timestamp}"
        self.dest_path = self.exchange_path(course, "inbound", self.assignment_filename)

    def check_filename_diff(self, released: list[str], submitted: list[str]) -> None:
        """nbgrader's check for missing and extra notebooks (fails only with --strict)."""
        release_diff = [f"{n}: {'FOUND' if n in submitted else 'MISSING'}" for n in released]
        submitted_diff = [f"{n}: {'OK' if n in released else 'EXTRA'}" for n in submitted]
        missing = any(n not in submitted for n in released)
        extra = any(n not in released for n in submitted)
        if not (missing or extra):
            return
        diff = "Expected:\n\t{}\nSubmitted:\n\t{}".format(
            "\n\t".join(release_diff), "\n\t".join(submitted_diff)
        )
        assignment = self.coursedir.assignment_id
        if missing and self.strict:
            self.fail(
                f"Assignment {assignment} not submitted. "
                f"There are missing notebooks for the submission:\n{diff}"
            )
        self.log.warning(
            "Possible missing notebooks and/or extra notebooks "
            f"submitted for assignment {assignment}:\n{diff}"
        )

    def copy_files(self) -> None:
        course, name = self.coursedir.course_id, self.coursedir.assignment_id
        chosen, folders = self.select(self.src_path)
        selected = [(path, local) for path, local in chosen if path not in EXTRA]
        with tempfile.TemporaryDirectory(prefix="nbgrader-submit-") as extra_dir:
            extras = {
                "timestamp.txt": self.timestamp,
                "submission_secret.txt": secrets.token_hex(64),
            }
            for filename, text in extras.items():
                with open(os.path.join(extra_dir, filename), "w") as fh:
                    fh.write(text)
            # Before reading anything: a folder may link to a tree far over the limit.
            self.check_dir_size(sum(os.path.getsize(local) for _, local in selected))
            files = self.scan(selected)
            extra_files = self.scan([(f, os.path.join(extra_dir, f)) for f in EXTRA])
            plan = self.call(
                PLAN,
                {"c": course, "a": name, "h": sorted({f.sha256 for f in files + extra_files})},
            )
            released = sorted(
                f["path"]
                for f in plan["course"]["assignment"]["files"]
                if f["path"].endswith(".ipynb")
            )
            if not plan["course"]["assignment"]["released"]:
                self.fail(f"Assignment not found: {name} is not released in course {course}")
            self.log.info(f"Source: {self.src_path}")
            self.log.info(f"Destination: {self.dest_path}")
            self.check_filename_diff(
                released, sorted(p for p, _ in selected if p.endswith(".ipynb"))
            )
            inputs, uploads = self.upload_inputs(
                files + extra_files, "files", set(plan["missingContent"])
            )
            self.call(
                SUBMIT,
                {
                    "c": course,
                    "a": name,
                    "files": inputs,
                    "ts": self.timestamp,
                    "folders": folders,
                },
                uploads,
            )
            self.cache_copy(selected, folders, extras)
        self.log.info(f"Submitted as: {course} {name} {self.timestamp}")

    def cache_copy(
        self, selected: list[tuple[str, str]], folders: list[str], extras: dict[str, str]
    ) -> None:
        """The local copy ``list --cached`` and ``fetch_feedback`` read."""
        cache_path = os.path.join(self.cache_path, self.assignment_filename)
        for folder in folders:
            os.makedirs(os.path.join(cache_path, *folder.split("/")), exist_ok=True)
        for path, local in selected:
            target = os.path.join(cache_path, *path.split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(local, target)
        os.makedirs(cache_path, exist_ok=True)
        for filename, text in extras.items():
            with open(os.path.join(cache_path, filename), "w") as fh:
                fh.write(text)
