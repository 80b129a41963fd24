"""``nbgrader release_feedback``: upload feedback/<student>/<assignment>/<notebook>.html,
each matched to the submission its timestamp.txt names, in one bulk mutation."""

from __future__ import annotations

import glob
import os
import re

from nbgrader.exchange.abc import ExchangeReleaseFeedback as ABCExchangeReleaseFeedback

from ngshare_gql.client import LocalFile
from ngshare_gql.nbgrader.exchange import Exchange

PLAN = """query($c: String!, $h: [String!]!) {
  me { admin }
  course(id: $c) { myRoles assignments {
    name submissions(filter: {includeRemoved: true}) { student timestamp } } }
  missingContent(courseId: $c, sha256: $h)
}"""

RELEASE = """mutation($c: String!, $a: String!, $f: [FeedbackInput!]!) {
  releaseFeedback(courseId: $c, assignment: $a, feedback: $f) { student notebook }
}"""


class ExchangeReleaseFeedback(Exchange, ABCExchangeReleaseFeedback):
    def init_src(self) -> None:
        student_id = self.coursedir.student_id if self.coursedir.student_id else "*"
        self.src_path = self.coursedir.format_path(
            self.coursedir.feedback_directory, student_id, self.coursedir.assignment_id
        )

    def init_dest(self) -> None:
        course = self.require_course()
        self.dest_path = self.exchange_path(course, "feedback")

    def found(self) -> list[tuple[str, str, str, str]]:
        """(student, notebook, timestamp, html path) for every feedback file to release."""
        exclude = set(filter(None, (self.coursedir.student_id_exclude or "").split(",")))
        regexp = re.escape(os.path.sep).join(
            [
                self.coursedir.format_path(
                    self.coursedir.feedback_directory,
                    "(?P<student_id>.*)",
                    self.coursedir.assignment_id,
                    escape=True,
                ),
                "(?P<notebook_id>.*).html",
            ]
        )
        found = []
        for html_file in sorted(glob.glob(os.path.join(self.src_path, "*.html"))):
            m = re.match(regexp, html_file)
            if m is None:
                self.log.error("Could not match '%s' with regexp '%s'", html_file, regexp)
                continue
            student_id, notebook_id = m.group("student_id"), m.group("notebook_id")
            if student_id in exclude:
                self.log.debug(f"Skipping student '{student_id}'")
                continue
            timestamp_path = os.path.join(os.path.dirname(html_file), "timestamp.txt")
            if not os.path.isfile(timestamp_path):
                self.fail(
                    f"No timestamp.txt next to {html_file}: re-run `nbgrader generate_feedback`"
                )
            with open(timestamp_path) as fh:
                timestamp = fh.read().strip()
            found.append((student_id, notebook_id, timestamp, html_file))
        return found

    def copy_files(self) -> None:
        course, name = self.coursedir.course_id, self.coursedir.assignment_id
        found = self.found()
        if not found:
            return
        files = [LocalFile.scan(f"{nb}.html", html) for _, nb, _, html in found]
        plan = self.call(PLAN, {"c": course, "h": sorted({f.sha256 for f in files})})
        if not plan["me"]["admin"] and "INSTRUCTOR" not in plan["course"]["myRoles"]:
            self.fail(f"you are not an instructor of course '{course}'")
        known = {
            (s["student"], s["timestamp"])
            for a in plan["course"]["assignments"]
            if a["name"] == name
            for s in a["submissions"]
        }
        missing = set(plan["missingContent"])
        feedback, uploads, unknown = [], {}, []
        for (student, notebook, timestamp, _), local in zip(found, files, strict=False):
            if (student, timestamp) not in known:
                self.log.warning(
                    f"Not releasing feedback for student '{student}' on '{course}/{name}/"
                    f"{notebook}': the exchange has no submission made at {timestamp}"
                )
                unknown.append(student)
                continue
            self.log.info(
                f"Releasing feedback for student '{student}' on assignment "
                f"'{course}/{name}/{notebook}' ({timestamp})"
            )
            if local.sha256 in missing:
                uploads[f"f.{len(feedback)}.files.0.content"] = local
            feedback.append(
                {
                    "student": student,
                    "notebook": notebook,
                    "timestamp": timestamp,
                    "files": [local.as_input()],
                }
            )
        if feedback:
            self.call(RELEASE, {"c": course, "a": name, "f": feedback}, uploads)
        for item in feedback:
            self.log.info(
                "Feedback released to: "
                + self.exchange_path(course, "feedback", name, item["student"], item["notebook"])
            )
        if unknown:
            # Feedback belongs to a submission the exchange holds: one collected from
            # elsewhere (another exchange, by hand, zip_collect) has none to go with.
            why = (
                f"Not released (no submission of '{name}' in the exchange at the timestamp "
                f"in their timestamp.txt): {', '.join(sorted(set(unknown)))}"
            )
            if not feedback:
                self.fail(why)
            self.log.warning(why)
