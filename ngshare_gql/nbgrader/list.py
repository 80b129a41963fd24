"""``nbgrader list``: released assignments, submissions (``--inbound``), the local cache
(``--cached``), and ``--remove``; the same dicts and log lines as nbgrader's default
exchange, one GraphQL round trip per listing."""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import os
import re
import shutil

from nbgrader.exchange.abc import ExchangeList as ABCExchangeList

from ngshare_gql.nbgrader.exchange import Exchange

OUTBOUND = """{ courses { id assignments(released: true) { name files { path } } } }"""

SUBMISSIONS = """{
  me { name }
  courses { id assignments { name submissions {
    student timestamp files { path } feedback { notebook files { path sha256 } }
  } } }
}"""

# Feedback on cached submissions, including those an instructor has since cleared
# from the inbound (nbgrader's exchange keeps feedback apart from the inbound too).
FEEDBACK = """{
  me { name }
  courses { id assignments { name feedback { student timestamp notebook files { path sha256 } } } }
}"""

UNRELEASE = """mutation($c: String!, $n: String!) {
  unreleaseAssignment(courseId: $c, name: $n) { name } }"""

REMOVE = """mutation($c: String!, $a: String!, $s: String!, $t: String!) {
  removeSubmissions(courseId: $c, assignment: $a, student: $s, timestamp: $t) }"""

CACHED = re.compile(
    r".*/(?P<course_id>.*)/(?P<student_id>.*)\+(?P<assignment_id>.*)\+(?P<timestamp>.*)"
)


def _sha256(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def _top_notebooks(paths: list[str]) -> list[str]:
    return sorted(p for p in paths if "/" not in p and p.endswith(".ipynb"))


class ExchangeList(ABCExchangeList, Exchange):
    def init_src(self) -> None:
        pass

    def copy_files(self) -> None:
        pass

    def wanted(self, course_id: str, assignment_id: str) -> bool:
        """Ids matched as nbgrader's exchange globs its folders: ``nbgrader list 'ps*'``."""
        return fnmatch.fnmatchcase(course_id, self.coursedir.course_id or "*") and (
            fnmatch.fnmatchcase(assignment_id, self.coursedir.assignment_id or "*")
        )

    def init_dest(self) -> None:
        """Collect the entries nbgrader's default exchange would find by globbing.

        Each entry is (sort key, info as parsed from the path, notebook names,
        exchange feedback {(timestamp, notebook): sha256}).
        """
        self.entries: list[tuple[str, dict, list[str], dict]] = []
        if self.cached:
            self.cached_entries()
        elif self.inbound:
            self.inbound_entries()
        else:
            for course in self.call(OUTBOUND)["courses"]:
                for a in course["assignments"]:
                    if self.wanted(course["id"], a["name"]):
                        info = {"course_id": course["id"], "assignment_id": a["name"]}
                        path = self.exchange_path(course["id"], "outbound", a["name"])
                        notebooks = _top_notebooks([f["path"] for f in a["files"]])
                        self.entries.append((path, info, notebooks, {}))
        self.entries.sort(key=lambda entry: entry[0])

    def inbound_entries(self) -> None:
        data = self.call(SUBMISSIONS)
        for course in data["courses"]:
            for a in course["assignments"]:
                if not self.wanted(course["id"], a["name"]):
                    continue
                student = self.coursedir.student_id or "*"
                for s in a["submissions"]:
                    if not fnmatch.fnmatchcase(s["student"], student):
                        continue
                    name = f"{s['student']}+{a['name']}+{s['timestamp']}"
                    info = {
                        "course_id": course["id"],
                        "student_id": s["student"],
                        "assignment_id": a["name"],
                        "timestamp": s["timestamp"],
                        "random_string": None,
                    }
                    feedback = {
                        (s["timestamp"], fb["notebook"]): self.feedback_sha(fb)
                        for fb in s["feedback"]
                    }
                    notebooks = _top_notebooks([f["path"] for f in s["files"]])
                    path = self.exchange_path(course["id"], "inbound", name)
                    self.entries.append((path, info, notebooks, feedback))

    def cached_entries(self) -> None:
        course = self.coursedir.course_id or "*"
        assignment = self.coursedir.assignment_id or "*"
        student = self.coursedir.student_id or "*"
        paths = sorted(glob.glob(os.path.join(self.cache, course, f"{student}+{assignment}+*")))
        if not paths:
            return
        data = self.call(FEEDBACK)
        mine = {
            (c["id"], a["name"], fb["timestamp"], fb["notebook"]): self.feedback_sha(fb)
            for c in data["courses"]
            for a in c["assignments"]
            for fb in a["feedback"]
            if fb["student"] == data["me"]["name"]
        }
        for path in paths:
            m = CACHED.match(path)
            if m is None:
                raise RuntimeError("Could not match '%s' with regexp '%s'", path, CACHED.pattern)
            info = m.groupdict()
            notebooks = [
                os.path.basename(p) for p in sorted(glob.glob(os.path.join(path, "*.ipynb")))
            ]
            feedback = {
                (ts, nb): sha
                for (c, a, ts, nb), sha in mine.items()
                if (c, a) == (info["course_id"], info["assignment_id"])
            }
            self.entries.append((path, info, notebooks, feedback))

    @staticmethod
    def feedback_sha(feedback: dict) -> str | None:
        html = [f for f in feedback["files"] if f["path"] == f"{feedback['notebook']}.html"]
        chosen = html or feedback["files"]
        return chosen[0]["sha256"] if chosen else None

    # --- formatting, as nbgrader's default exchange -------------------------------
    def format_inbound_assignment(self, info: dict) -> str:
        msg = "{course_id} {student_id} {assignment_id} {timestamp}".format(**info)
        if info["status"] == "submitted":
            if info["has_local_feedback"] and not info["feedback_updated"]:
                msg += " (feedback already fetched)"
            elif info["has_exchange_feedback"]:
                msg += " (feedback ready to be fetched)"
            else:
                msg += " (no feedback available)"
        return msg

    def format_outbound_assignment(self, info: dict) -> str:
        msg = "{course_id} {assignment_id}".format(**info)
        if os.path.exists(info["assignment_id"]):
            msg += " (already downloaded)"
        return msg

    def parse_assignments(self) -> list[dict]:
        if self.coursedir.student_id:
            courses = self.authenticator.get_student_courses(self.coursedir.student_id)
        else:
            courses = None
        assignments = []
        for path, parsed, notebook_names, exchange_feedback in self.entries:
            info = dict(parsed)
            if courses is not None and info["course_id"] not in courses:
                continue
            assignment_dir = os.path.join(
                self.assignment_dir, self.local_root(info["course_id"], info["assignment_id"])
            )
            if self.inbound or self.cached:
                info["status"] = "submitted"
                info["path"] = path
            elif os.path.exists(assignment_dir):
                info["status"] = "fetched"
                info["path"] = os.path.abspath(assignment_dir)
            else:
                info["status"] = "released"
                info["path"] = path
            local = info["status"] == "fetched"
            if self.remove:
                info["status"] = "removed"

            if local:
                notebooks = sorted(glob.glob(os.path.join(info["path"], "*.ipynb")))
            elif self.cached:
                notebooks = [os.path.join(path, n) for n in notebook_names]
            else:
                notebooks = [f"{path}/{n}" for n in notebook_names]
            if not notebooks:
                self.log.warning("No notebooks found in {}".format(info["path"]))

            info["notebooks"] = []
            for notebook in notebooks:
                nb_info = {
                    "notebook_id": os.path.splitext(os.path.split(notebook)[1])[0],
                    "path": os.path.abspath(notebook) if "://" not in notebook else notebook,
                }
                if info["status"] != "submitted":
                    info["notebooks"].append(nb_info)
                    continue
                local_feedback_path = os.path.join(
                    assignment_dir, "feedback", info["timestamp"], f"{nb_info['notebook_id']}.html"
                )
                has_local = os.path.isfile(local_feedback_path)
                exchange_sha = exchange_feedback.get((info["timestamp"], nb_info["notebook_id"]))
                nb_info["has_local_feedback"] = has_local
                nb_info["has_exchange_feedback"] = exchange_sha is not None
                nb_info["local_feedback_path"] = local_feedback_path if has_local else None
                nb_info["feedback_updated"] = bool(
                    has_local
                    and exchange_sha is not None
                    and _sha256(local_feedback_path) != exchange_sha
                )
                info["notebooks"].append(nb_info)

            if info["status"] == "submitted":
                nbs = info["notebooks"]
                info["has_local_feedback"] = bool(nbs) and all(
                    nb["has_local_feedback"] for nb in nbs
                )
                info["has_exchange_feedback"] = bool(nbs) and all(
                    nb["has_exchange_feedback"] for nb in nbs
                )
                info["feedback_updated"] = bool(nbs) and any(nb["feedback_updated"] for nb in nbs)
                if info["has_local_feedback"]:
                    full = os.path.abspath(assignment_dir)
                    base = full if os.path.exists(full) else assignment_dir
                    info["local_feedback_path"] = os.path.join(base, "feedback", info["timestamp"])
                else:
                    info["local_feedback_path"] = None
            assignments.append(info)

        if self.inbound or self.cached:
            keys = sorted(
                {(a["course_id"], a["student_id"], a["assignment_id"]) for a in assignments}
            )
            grouped = []
            for key in keys:
                submissions = sorted(
                    (
                        a
                        for a in assignments
                        if (a["course_id"], a["student_id"], a["assignment_id"]) == key
                    ),
                    key=lambda x: x["timestamp"],
                )
                grouped.append(
                    {
                        "course_id": key[0],
                        "student_id": key[1],
                        "assignment_id": key[2],
                        "status": submissions[0]["status"],
                        "submissions": submissions,
                    }
                )
            assignments = grouped
        return assignments

    def log_listing(self, assignments: list[dict], removing: bool) -> None:
        if self.inbound or self.cached:
            self.log.info(
                "Removing submitted assignments:" if removing else "Submitted assignments:"
            )
            for assignment in assignments:
                for info in assignment["submissions"]:
                    self.log.info(self.format_inbound_assignment(info))
        else:
            self.log.info("Removing released assignments:" if removing else "Released assignments:")
            for info in assignments:
                self.log.info(self.format_outbound_assignment(info))

    def list_files(self) -> list[dict]:
        assignments = self.parse_assignments()
        self.log_listing(assignments, removing=False)
        return assignments

    def remove_files(self) -> list[dict]:
        assignments = self.parse_assignments()
        self.log_listing(assignments, removing=True)
        for path, info, _, _ in self.entries:
            if self.cached:
                shutil.rmtree(path)
            elif self.inbound:
                self.call(
                    REMOVE,
                    {
                        "c": info["course_id"],
                        "a": info["assignment_id"],
                        "s": info["student_id"],
                        "t": info["timestamp"],
                    },
                )
            else:
                self.call(UNRELEASE, {"c": info["course_id"], "n": info["assignment_id"]})
        return assignments
