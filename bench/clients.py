"""The two services behind one interface, so every workload runs the same steps on both.

Ours goes through :class:`ngshare_gql.client.Client` as our nbgrader plugins do
(streamed multipart uploads, hashes checked before upload so unchanged content is
skipped, sha256-verified streamed downloads, a few files at a time).  ngshare is
driven as its nbgrader exchange drives it: form-encoded JSON with base64 file
contents, md5 checked on download.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import threading
import time
from urllib.parse import urlencode

import requests

from bench.cpu import CpuDuring
from ngshare_gql.client import Client, Download, LocalFile
from tests.servers import create_course

Files = list[tuple[str, str]]  # (path in the assignment, local file)


def token_of(user: str) -> str:
    return f"bench-token-{user}"


def _download(file: dict, dest: str) -> Download:
    """A File of a GraphQL answer, to be downloaded under ``dest``."""
    return Download(file["url"], os.path.join(dest, file["path"]), file["sha256"], file["size"])


class _Counter:
    """Request body bytes sent, summed over all sessions of a service."""

    def __init__(self) -> None:
        self.bytes = 0
        self._lock = threading.Lock()

    def hook(self, response: requests.Response, *args, **kwargs) -> None:
        size = int(response.request.headers.get("Content-Length") or 0)
        with self._lock:
            self.bytes += size


class Ours:
    name = "ngshare-gql"

    def __init__(self, url: str, timeout: float = 900.0) -> None:
        self.url = url
        self.timeout = timeout
        self.sent = _Counter()
        self.content_sent = 0
        self.last_post_seconds = 0.0  # the last upload request alone (single-threaded W1)
        self.post_cpu: CpuDuring | None = None  # W1's accounting of its upload's POST
        self._clients: dict[str, Client] = {}
        self._lock = threading.Lock()

    def client(self, user: str) -> Client:
        with self._lock:
            if user not in self._clients:
                client = Client(self.url, token_of(user), timeout=self.timeout)
                client.session.hooks["response"].append(self.sent.hook)
                self._clients[user] = client
            return self._clients[user]

    def setup(self, course: str, instructor: str, students: list[str]) -> None:
        create_course(self.client("admin"), course, [instructor], students)

    def _store(self, user: str, mutation: str, variables: dict, files: Files) -> int:
        client = self.client(user)
        local = [LocalFile.scan(path, src) for path, src in files]
        missing = client.upload_plan(variables["c"], local)
        variables = {**variables, "f": [f.as_input() for f in local]}
        uploads = {f"f.{i}.content": f for i, f in enumerate(local) if f.sha256 in missing}
        with self.post_cpu or contextlib.nullcontext():
            t0 = time.perf_counter()
            client.execute_with_files(mutation, variables, uploads)
            self.last_post_seconds = time.perf_counter() - t0
        sent = sum(f.size for f in uploads.values())
        with self._lock:
            self.content_sent += sent
        return sent

    def release(self, user: str, course: str, assignment: str, files: Files) -> int:
        return self._store(
            user,
            "mutation($c: String!, $a: String!, $f: [FileInput!]!) "
            "{ releaseAssignment(courseId: $c, name: $a, files: $f) { name } }",
            {"c": course, "a": assignment},
            files,
        )

    def submit(self, user: str, course: str, assignment: str, files: Files) -> int:
        return self._store(
            user,
            "mutation($c: String!, $a: String!, $f: [FileInput!]!) "
            "{ submitAssignment(courseId: $c, assignment: $a, files: $f) { id } }",
            {"c": course, "a": assignment},
            files,
        )

    def fetch(self, user: str, course: str, assignment: str, dest: str) -> int:
        client = self.client(user)
        files = client.execute(
            "mutation($c: String!, $a: String!) "
            "{ fetchAssignment(courseId: $c, name: $a) { files { path sha256 size url } } }",
            {"c": course, "a": assignment},
        )["fetchAssignment"]["files"]
        client.download_many([_download(f, dest) for f in files])
        return len(files)

    def collect(self, user: str, course: str, assignment: str, dest: str) -> int:
        client = self.client(user)
        subs = client.execute(
            "mutation($c: String!, $a: String!) { collectSubmissions(courseId: $c, "
            "assignment: $a, filter: {latestOnly: true}) "
            "{ student files { path sha256 size url } } }",
            {"c": course, "a": assignment},
        )["collectSubmissions"]
        client.download_many(
            [_download(f, os.path.join(dest, sub["student"])) for sub in subs for f in sub["files"]]
        )
        return len(subs)

    def list_once(self, user: str) -> int:
        courses = self.client(user).execute("{ courses { id assignments { name } } }")["courses"]
        return sum(len(c["assignments"]) for c in courses)


class Ngshare:
    name = "ngshare 0.6.0"

    def __init__(self, url: str, timeout: float = 900.0) -> None:
        self.url = url
        self.timeout = timeout
        self.sent = _Counter()
        self.content_sent = 0
        self.last_post_seconds = 0.0  # the last upload request alone (single-threaded W1)
        self.post_cpu: CpuDuring | None = None  # W1's accounting of its upload's POST
        self._sessions: dict[str, requests.Session] = {}
        self._lock = threading.Lock()

    def session(self, user: str) -> requests.Session:
        with self._lock:
            if user not in self._sessions:
                session = requests.Session()
                session.headers["Authorization"] = f"token {token_of(user)}"
                session.hooks["response"].append(self.sent.hook)
                self._sessions[user] = session
            return self._sessions[user]

    def _call(self, user: str, method: str, path: str, **kwargs) -> dict:
        response = self.session(user).request(
            method, self.url + path, timeout=self.timeout, **kwargs
        )
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if response.status_code != 200 or not answer.get("success"):
            raise RuntimeError(
                f"ngshare {method} {path}: HTTP {response.status_code} {answer.get('message')}"
            )
        return answer

    def setup(self, course: str, instructor: str, students: list[str]) -> None:
        instructors = {"instructors": json.dumps([instructor])}
        self._call("admin", "POST", f"course/{course}", data=instructors)
        roster = [
            {"username": s, "first_name": s, "last_name": "Student", "email": f"{s}@example.org"}
            for s in students
        ]
        self._call(instructor, "POST", f"students/{course}", data={"students": json.dumps(roster)})

    def _post_files(self, user: str, path: str, files: Files) -> int:
        packed = []
        size = 0
        for name, src in files:
            with open(src, "rb") as f:
                data = f.read()
            size += len(data)
            packed.append({"path": name, "content": base64.encodebytes(data).decode()})
        body = urlencode({"files": json.dumps(packed)})
        with self.post_cpu or contextlib.nullcontext():
            t0 = time.perf_counter()
            self._call(
                user, "POST", path, data=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            self.last_post_seconds = time.perf_counter() - t0
        with self._lock:
            self.content_sent += size
        return size

    def release(self, user: str, course: str, assignment: str, files: Files) -> int:
        return self._post_files(user, f"assignment/{course}/{assignment}", files)

    def submit(self, user: str, course: str, assignment: str, files: Files) -> int:
        return self._post_files(user, f"submission/{course}/{assignment}", files)

    @staticmethod
    def _unpack(files: list[dict], dest: str) -> None:
        for f in files:
            data = base64.decodebytes(f["content"].encode())
            if hashlib.md5(data).hexdigest() != f["checksum"]:
                raise RuntimeError(f"ngshare download of {f['path']} is corrupt")
            target = os.path.join(dest, f["path"])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as out:
                out.write(data)

    def fetch(self, user: str, course: str, assignment: str, dest: str) -> int:
        files = self._call(user, "GET", f"assignment/{course}/{assignment}")["files"]
        self._unpack(files, dest)
        return len(files)

    def collect(self, user: str, course: str, assignment: str, dest: str) -> int:
        subs = self._call(user, "GET", f"submissions/{course}/{assignment}")["submissions"]
        students = sorted({s["student_id"] for s in subs})
        for student in students:
            answer = self._call(user, "GET", f"submission/{course}/{assignment}/{student}")
            self._unpack(answer["files"], os.path.join(dest, student))
        return len(students)

    def list_once(self, user: str) -> int:
        courses = self._call(user, "GET", "courses")["courses"]
        return sum(
            len(self._call(user, "GET", f"assignments/{c}")["assignments"]) for c in courses
        )
