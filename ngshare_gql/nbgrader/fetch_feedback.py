"""``nbgrader fetch_feedback``: download the caller's feedback to
<assignment>/feedback/<submission timestamp>/<notebook>.html."""

from __future__ import annotations

import glob
import hashlib
import os

from nbgrader.exchange.abc import ExchangeFetchFeedback as ABCExchangeFetchFeedback

from ngshare_gql.nbgrader.exchange import FILE, VISIBLE, Exchange

FETCH = f"""mutation($c: String!, $a: String!) {{
  fetchFeedback(courseId: $c, assignment: $a) {{ notebook timestamp {FILE} }}
}}"""


def sha256_of(path: str) -> str | None:
    if not os.path.isfile(path):
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ExchangeFetchFeedback(Exchange, ABCExchangeFetchFeedback):
    def init_src(self) -> None:
        course = self.require_course()
        self.src_path = self.exchange_path(course, "feedback")
        self.cache_path = os.path.join(self.cache, course)
        student_id = self.coursedir.student_id
        if student_id != "*" and ("*" in student_id or "+" in student_id):
            self.fail(f"The student ID should contain no '*' nor '+'; got {student_id}")
        name = self.coursedir.assignment_id
        variables = {"c": course, "a": name}
        feedback = self.found_or_guess(FETCH, variables, "feedback", VISIBLE)["fetchFeedback"]
        self.feedback_files = []
        have = set()
        for item in feedback:
            if "/" in item["timestamp"] or item["timestamp"] in (".", ".."):
                self.log.warning(f"Skipping feedback with a bad timestamp {item['timestamp']!r}")
                continue
            self.log.info(
                f"Found feedback for '{course}/{name}/{item['notebook']}' "
                f"submitted at {item['timestamp']}"
            )
            have.add((item["timestamp"], item["notebook"]))
            self.feedback_files.append(item)
        # As the default exchange does, point out cached submissions without feedback.
        for submission in sorted(glob.glob(os.path.join(self.cache_path, f"*+{name}+*"))):
            timestamp = os.path.basename(submission).split("+")[-1]
            for notebook in sorted(glob.glob(os.path.join(submission, "*.ipynb"))):
                notebook_id = os.path.splitext(os.path.basename(notebook))[0]
                if (timestamp, notebook_id) not in have:
                    self.log.warning(
                        f"Could not find feedback for '{course}/{name}/{notebook_id}' "
                        f"submitted at {timestamp}"
                    )

    def init_dest(self) -> None:
        root = self.local_root(self.coursedir.course_id, self.coursedir.assignment_id)
        self.dest_path = os.path.abspath(os.path.join(self.assignment_dir, root, "feedback"))

    def copy_files(self) -> None:
        self.log.info(f"Source: {self.src_path}")
        self.log.info(f"Destination: {self.dest_path}")
        for item in self.feedback_files:
            dest = os.path.join(self.dest_path, item["timestamp"])
            os.makedirs(dest, exist_ok=True)
            # Unchanged feedback is not downloaded again.
            todo = [
                f
                for f in item["files"]
                if sha256_of(os.path.join(dest, *f["path"].split("/"))) != f["sha256"]
            ]
            self.download_all(todo, dest, keep_times=False)
            for f in item["files"]:
                self.log.info(f"Fetched feedback: {os.path.join(dest, *f['path'].split('/'))}")
