"""``nbgrader fetch_assignment``: download a released assignment into ./<assignment>."""

from __future__ import annotations

import os
import shutil
import uuid

from nbgrader.exchange.abc import ExchangeFetchAssignment as ABCExchangeFetchAssignment

from ngshare_gql.nbgrader.exchange import FILE, RELEASED, Exchange

FETCH = f"""mutation($c: String!, $n: String!) {{
  fetchAssignment(courseId: $c, name: $n) {{ {FILE} folders }}
}}"""


class ExchangeFetchAssignment(Exchange, ABCExchangeFetchAssignment):
    outdated_section = "ExchangeFetch"

    def init_src(self) -> None:
        course = self.require_course()
        if not self.authenticator.has_access(self.coursedir.student_id, course):
            self.fail("You do not have access to this course.")
        self.src_path = self.exchange_path(course, "outbound", self.coursedir.assignment_id)

    def init_dest(self) -> None:
        root = self.local_root(self.coursedir.course_id, self.coursedir.assignment_id)
        self.dest_path = os.path.abspath(os.path.join(self.assignment_dir, root))
        if os.path.isdir(self.dest_path) and not self.replace_missing_files:
            self.fail(f"You already have a copy of the assignment in this directory: {root}")

    def copy_files(self) -> None:
        course, name = self.coursedir.course_id, self.coursedir.assignment_id
        variables = {"c": course, "n": name}
        fetched = self.found_or_guess(FETCH, variables, "outbound", RELEASED)["fetchAssignment"]
        files = [f for f in fetched["files"] if not self.ignored(f["path"])]
        folders = self.folders_to_make(fetched["files"], fetched["folders"])
        self.log.info(f"Source: {self.src_path}")
        self.log.info(f"Destination: {self.dest_path}")
        if os.path.isdir(self.dest_path):
            self.replace_missing(files, folders)
        else:
            # Download next to the destination and move it in whole, so a failed
            # transfer never leaves a partial copy that blocks the next fetch.
            tmp = f"{self.dest_path}.fetching-{uuid.uuid4().hex[:8]}"
            try:
                os.makedirs(tmp)
                self.make_folders(tmp, folders)
                self.download_all(files, tmp)
                os.makedirs(os.path.dirname(self.dest_path), exist_ok=True)
                os.rename(tmp, self.dest_path)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        self.log.info(f"Fetched as: {course} {name}")

    def replace_missing(self, files: list[dict], folders: list[str]) -> None:
        """--replace: create the folders and download the files missing locally, never
        overwrite. Every path is checked first, as a fresh fetch checks them: one that
        would land outside the assignment's folder fails the fetch before anything is
        made."""
        downloads = self.downloads_into(files, self.dest_path, keep_times=False)
        made = list(self.paths_under(self.dest_path, folders))
        missing = []
        for download in downloads:
            self.create_missing(os.path.dirname(download.dest))
            if not os.path.exists(download.dest):
                self.log.warning(
                    "Replacing missing file '%s'", os.path.relpath(download.dest, os.getcwd())
                )
                missing.append(download)
        for target in made:
            self.create_missing(target)
        self.download(missing)

    def create_missing(self, directory: str) -> None:
        """``directory`` and the folders between it and the destination, as nbgrader's
        copy_if_missing makes them; ``directory`` is a checked, normalised path inside."""
        relative = os.path.relpath(directory, self.dest_path)
        parts = [] if relative == "." else relative.split(os.sep)
        for depth in range(1, len(parts) + 1):
            folder = os.path.join(self.dest_path, *parts[:depth])
            if not os.path.exists(folder):
                self.log.warning(
                    "Creating missing directory '%s'", os.path.relpath(folder, os.getcwd())
                )
                os.mkdir(folder)
