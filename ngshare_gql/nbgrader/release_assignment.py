"""``nbgrader release_assignment``: upload release/<assignment> to the service."""

from __future__ import annotations

import glob
import os
from datetime import datetime, timezone

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.exchange.abc import ExchangeReleaseAssignment as ABCExchangeReleaseAssignment

from ngshare_gql.nbgrader.exchange import Exchange

PLAN = """query($c: String!, $h: [String!]!) {
  course(id: $c) { assignments(released: true) { name } }
  missingContent(courseId: $c, sha256: $h)
}"""

RELEASE = """mutation($c: String!, $n: String!, $files: [FileInput!]!, $due: DateTime,
                     $force: Boolean!, $folders: [String!]) {
  releaseAssignment(courseId: $c, name: $n, files: $files, dueAt: $due, force: $force,
                    folders: $folders) {
    name files { path }
  }
}"""


class ExchangeReleaseAssignment(Exchange, ABCExchangeReleaseAssignment):
    outdated_section = "ExchangeRelease"

    def init_src(self) -> None:
        coursedir = self.coursedir
        self.src_path = coursedir.format_path(
            coursedir.release_directory, ".", coursedir.assignment_id
        )
        if not os.path.isdir(self.src_path):
            source = coursedir.format_path(coursedir.source_directory, ".", coursedir.assignment_id)
            if os.path.isdir(source):
                self.fail(
                    f"Assignment found in '{source}' but not '{self.src_path}', "
                    "run `nbgrader generate_assignment` first."
                )
            self.assignment_not_found(
                self.src_path,
                glob.glob(coursedir.format_path(coursedir.release_directory, ".", "*")),
            )

    def init_dest(self) -> None:
        self.require_course()
        self.dest_path = self.exchange_path(
            self.coursedir.course_id, "outbound", self.coursedir.assignment_id
        )

    def due_date(self) -> datetime | None:
        """The gradebook's due date, sent as the server's due time (only when the course
        already has a gradebook: releasing never creates one)."""
        db_url = self.coursedir.db_url
        if not db_url.startswith("sqlite:///") or not os.path.exists(db_url[len("sqlite:///") :]):
            return None
        with Gradebook(db_url, self.coursedir.course_id) as gb:
            try:
                due = gb.find_assignment(self.coursedir.assignment_id).duedate
            except MissingEntry:
                return None
        return due.replace(tzinfo=timezone.utc) if due is not None else None

    def copy_files(self) -> None:
        course, name = self.coursedir.course_id, self.coursedir.assignment_id
        selected, folders = self.select(self.src_path)
        self.check_dir_size(sum(os.path.getsize(local) for _, local in selected))
        files = self.scan(selected)
        plan = self.call(PLAN, {"c": course, "h": sorted({f.sha256 for f in files})})
        exists = name in {a["name"] for a in plan["course"]["assignments"]}
        if exists:
            if not self.force:
                self.fail(f"Destination already exists, add --force to overwrite: {course} {name}")
            self.log.info(f"Overwriting files: {course} {name}")
        self.log.info(f"Source: {self.src_path}")
        self.log.info(f"Destination: {self.dest_path}")
        inputs, uploads = self.upload_inputs(files, "files", set(plan["missingContent"]))
        due = self.due_date()
        self.call(
            RELEASE,
            {
                "c": course,
                "n": name,
                "files": inputs,
                "due": due.isoformat() if due else None,
                "force": self.force,
                "folders": folders,
            },
            uploads,
        )
        self.log.info(f"Released as: {course} {name}")
