"""``nbgrader collect``: download each student's submission into submitted/<student>/.

Two GraphQL round trips whatever the number of students (the assignment's due
time, then one collect returning every submission's metadata; a ``--student``
pattern adds one, listing who submitted), plus one GET per file actually copied,
a few at a time across all students.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.exchange.abc import ExchangeCollect as ABCExchangeCollect
from nbgrader.utils import parse_utc

from ngshare_gql.client import Download
from ngshare_gql.nbgrader.exchange import FILE, Exchange, ExchangeError

DUE = """query($c: String!) { course(id: $c) { assignments { name dueAt } } }"""

COLLECT = f"""mutation($c: String!, $a: String!, $f: SubmissionFilter) {{
  collectSubmissions(courseId: $c, assignment: $a, filter: $f) {{
    student timestamp receivedAt {FILE} folders
  }}
}}"""


SUBMITTERS = """query($c: String!, $a: String!) {
  course(id: $c) { assignment(name: $a) { submissions { student } } }
}"""


# How far the timestamp nbgrader judges lateness by may lie from when the service
# received the submission: the difference of two clocks, and, received after it, the
# upload's length at a slow link's pace (the service notes the time once all arrived).
CLOCK_SLACK = timedelta(minutes=5)
SLOW_LINK = 125_000  # bytes a second: 1 Mbit/s


def naive_utc(value: str) -> datetime:
    """A date-time the service gave (with its zone) in naive UTC, as nbgrader compares."""
    return datetime.fromisoformat(value).astimezone(timezone.utc).replace(tzinfo=None)


def in_words(delta: timedelta) -> str:
    """A duration in the unit a person would say it in, to the nearest whole one."""
    seconds = delta.total_seconds()
    if seconds < 119.5 * 60:
        return f"{int(seconds / 60 + 0.5)} minutes"
    if seconds < 47.5 * 3600:
        return f"{int(seconds / 3600 + 0.5)} hours"
    return f"{int(seconds / 86400 + 0.5)} days"


def submission_time(submission: dict) -> datetime:
    """The client's timestamp (what nbgrader compares), else when the server got it."""
    try:
        return parse_utc(submission["timestamp"])
    except (ValueError, OverflowError):
        return naive_utc(submission["receivedAt"])


class ExchangeCollect(Exchange, ABCExchangeCollect):
    def init_src(self) -> None:
        course = self.require_course()
        name = self.coursedir.assignment_id
        self.src_path = self.exchange_path(course, "inbound")
        self.src_records = []
        assignments = self.call(DUE, {"c": course})["course"]["assignments"]
        due_at = {a["name"]: a["dueAt"] for a in assignments}
        if name not in due_at:
            return  # never released: "No submissions ...", as nbgrader's exchange says
        server_due = due_at[name]
        with Gradebook(self.coursedir.db_url, course) as gb:
            try:
                self.duedate = gb.find_assignment(name).duedate
            except MissingEntry:
                self.duedate = None
        if self.duedate is None and server_due:
            self.duedate = naive_utc(server_due)
        which = self.which_students(course, name)
        if which is None:
            return  # a --student pattern that matches no one who submitted
        which["latestOnly"] = not (self.before_duedate and self.duedate is not None)
        found = self.call(COLLECT, {"c": course, "a": name, "f": which})["collectSubmissions"]
        by_student: dict[str, list[dict]] = defaultdict(list)
        for submission in found:
            by_student[submission["student"]].append(submission)
        for records in by_student.values():
            records.sort(key=submission_time, reverse=True)
            chosen = records[0]
            if self.before_duedate and self.duedate is not None:
                before = [r for r in records if submission_time(r) <= self.duedate]
                chosen = before[0] if before else records[0]
            self.src_records.append(chosen)

    def which_students(self, course: str, name: str) -> dict | None:
        """The filter's part that says whose submissions to collect; None: no one's.  As
        nbgrader's exchange globs "<student>+<assignment>+*", --student may be a pattern:
        the students who submitted are listed first, so only those it matches are marked
        collected."""
        student = self.coursedir.student_id
        if student in ("", "*"):
            return {}
        if not any(c in student for c in "*?["):
            return {"student": student}
        listed = self.call(SUBMITTERS, {"c": course, "a": name})["course"]["assignment"]
        names = {s["student"] for s in listed["submissions"]}
        matched = sorted(n for n in names if n == student or fnmatch.fnmatchcase(n, student))
        return {"students": matched} if matched else None

    def init_dest(self) -> None:
        pass

    def copy_files(self) -> None:
        course, name = self.coursedir.course_id, self.coursedir.assignment_id
        if not self.src_records:
            self.log.warning(f"No submissions of '{name}' for course '{course}' to collect")
        else:
            self.log.info(
                f"Processing {len(self.src_records)} submissions of '{name}' for course '{course}'"
            )
        # check_owner needs no cross-check here: the service records each submission
        # under the identity that authenticated it, so a student cannot claim another's.
        pending: list[tuple[dict, str, bool]] = []
        for rec in self.src_records:
            student_id = rec["student"]
            dest_path = self.coursedir.format_path(
                self.coursedir.submitted_directory, student_id, name
            )
            os.makedirs(os.path.dirname(dest_path), exist_ok=True)
            copy = updating = False
            if os.path.isdir(dest_path):
                existing = self.coursedir.get_existing_timestamp(dest_path)
                new = submission_time(rec)
                newer = self.update and (existing is None or new > existing)
                if newer or (self.before_duedate and existing != new):
                    copy = updating = True
            else:
                copy = True
            if not copy:
                if self.update:
                    self.log.info(f"No newer submission to collect: {student_id} {name}")
                else:
                    self.log.info(
                        f"Submission already exists, use --update to update: {student_id} {name}"
                    )
                continue
            if updating:
                self.log.info(f"Updating submission: {student_id} {name}")
            else:
                self.log.info(f"Collecting submission: {student_id} {name}")
            pending.append((rec, dest_path, updating))
        self.copy_submissions(pending)

    def warn_if_misdated(self, submission: dict, dest_path: str) -> None:
        """Say so when the timestamp.txt just collected, which nbgrader judges lateness
        by, cannot be read or lies far from when the service received the submission:
        the default exchange cannot tell, but a wrong clock or an altered file would
        hide a late submission, or make an on-time one late."""
        who = f"{submission['student']}'s submission of '{self.coursedir.assignment_id}'"
        received = naive_utc(submission["receivedAt"])
        try:
            with open(os.path.join(dest_path, "timestamp.txt")) as fh:
                stamp = fh.read().strip()
        except (OSError, UnicodeDecodeError):  # none (nbgrader: not late), or unreadable
            return
        if not stamp:
            return  # nbgrader warns of an empty one itself
        try:
            claimed = parse_utc(stamp)
        except (ValueError, OverflowError):
            self.log.warning(
                "%s has a timestamp.txt nbgrader cannot read (%r), which autograde will "
                "stop at; the service received it at %s UTC",
                who, stamp[:100], f"{received:%Y-%m-%d %H:%M:%S}",
            )
            return
        due = getattr(self, "duedate", None)
        if received > claimed:
            size = sum(int(f["size"]) for f in submission["files"])
            slack = CLOCK_SLACK + timedelta(seconds=size / SLOW_LINK)
            when, crossed = "after", due is not None and claimed <= due < received
            causes = "a slow upload, a wrong clock or an altered timestamp.txt"
        else:
            slack = CLOCK_SLACK
            when, crossed = "before", due is not None and received <= due < claimed
            causes = "a wrong clock or an altered timestamp.txt"
        if abs(received - claimed) <= slack:
            return
        read_as = "" if stamp.endswith(" UTC") else f" (read as {claimed:%Y-%m-%d %H:%M:%S} UTC)"
        due_said = f" and {when} the due date ({due:%Y-%m-%d %H:%M:%S} UTC)" if crossed else ""
        self.log.warning(
            "%s, stamped %s%s, reached the service at %s UTC, %s %s its timestamp%s: %s; "
            "nbgrader judges lateness by the timestamp",
            who, stamp[:100], read_as, f"{received:%Y-%m-%d %H:%M:%S}",
            in_words(abs(received - claimed)), when, due_said, causes,
        )

    def selected(self, files: list[dict]) -> list[dict]:
        """CourseDirectory.ignore, include and max_file_size, as the default exchange
        applies them when copying out of its inbound directory."""
        include = self.coursedir.include
        limit = self.coursedir.max_file_size
        kept = []
        for f in files:
            if self.ignored(f["path"]):
                continue
            name = f["path"].rsplit("/", 1)[-1]
            if include and not any(fnmatch.fnmatch(name, glob) for glob in include):
                continue
            if limit and int(f["size"]) > 1000 * limit:
                self.log.warning(
                    "Ignoring file too large '%s' "
                    "(see config option CourseDirectory.max_file_size)",
                    f["path"],
                )
                continue
            kept.append(f)
        return kept

    def copy_submissions(self, pending: list[tuple[dict, str, bool]]) -> None:
        """Download the chosen submissions (each with its destination, and whether it
        replaces what is there) all in one go, a few files at a time whoever's they are,
        each into a temporary folder beside its place; then move each one that arrived
        whole into place.

        As nbgrader's exchange does, a submission over ``max_dir_size`` ends the collect
        after the ones before it; a failed download, after those that arrived whole.  A
        replaced submission is removed only once its successor is complete.  When the
        collect ends early, the students whose submissions it did not place are named.
        """
        placed: set[str] = set()
        try:
            self._copy_submissions(pending, placed)
        except BaseException as exc:
            missed = [rec["student"] for rec, dest_path, _ in pending if dest_path not in placed]
            if missed:
                self.log.error(
                    "Not collected (%s): %s; run collect again once that is fixed",
                    str(exc) or type(exc).__name__,
                    ", ".join(missed),
                )
            raise
        finally:
            for rec, dest_path, _ in pending:
                if dest_path in placed:
                    self.warn_if_misdated(rec, dest_path)

    def _copy_submissions(self, pending: list[tuple[dict, str, bool]], placed: set[str]) -> None:
        staged: list[tuple[str, str, bool, list[Download]]] = []
        stopped: Exception | None = None
        try:
            for submission, dest_path, replace in pending:
                files = submission["files"]
                try:
                    self.check_dir_size(sum(int(f["size"]) for f in files))
                    tmp = f"{dest_path}.collecting-{uuid.uuid4().hex[:8]}"
                    downloads = self.downloads_into(self.selected(files), tmp)
                except (RuntimeError, ExchangeError) as exc:
                    stopped = exc
                    break
                os.makedirs(tmp)
                staged.append((tmp, dest_path, replace, downloads))
                self.make_folders(tmp, self.folders_to_make(files, submission["folders"]))
            try:
                self.download([d for *_, downloads in staged for d in downloads])
            finally:
                for tmp, dest_path, replace, downloads in staged:
                    if all(os.path.exists(d.dest) for d in downloads):
                        if self.coursedir.groupshared:
                            self.share_with_group(tmp)
                        if replace:
                            shutil.rmtree(dest_path)
                        os.rename(tmp, dest_path)
                        placed.add(dest_path)
            if stopped is not None:
                raise stopped
        finally:
            for tmp, *_ in staged:
                shutil.rmtree(tmp, ignore_errors=True)

    def share_with_group(self, root: str) -> None:
        """``CourseDirectory.groupshared``: folders ug+rwx and setgid, files ug+rw, as
        nbgrader's exchange leaves a collected submission for the other instructors."""
        for folder, _dirs, files in os.walk(root):
            self._add_mode(folder, 0o2770)
            for name in files:
                self._add_mode(os.path.join(folder, name), 0o660)

    def _add_mode(self, path: str, bits: int) -> None:
        mode = os.stat(path).st_mode
        if mode & bits != bits:
            try:
                os.chmod(path, (mode | bits) & 0o2777)
            except OSError:
                self.log.warning("Could not update permissions of %s to make it groupshared", path)
