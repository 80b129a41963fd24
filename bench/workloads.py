"""W1-W6: the same steps, timed, against either service (see :mod:`bench.clients`)."""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bench import physical
from bench.cpu import CpuDuring
from bench.rss import PeakRss

MB = 1024 * 1024
COURSE = "bench101"
INSTRUCTOR = "ins"


@dataclass(frozen=True)
class Sizes:
    """How big each workload is; :meth:`tiny` keeps every step but shrinks the data."""

    w1_file: int = 50 * MB
    students: int = 100
    concurrency: int = 16
    release_data: int = 5 * MB
    submission: int = 2 * MB
    w4_clients: int = 8
    w4_ops: int = 40
    w6_file: int = 2048 * MB
    sha_probe: int = 512 * MB
    socket_probe: int = 2048 * MB

    @classmethod
    def tiny(cls) -> Sizes:
        return cls(
            w1_file=1 * MB, students=6, concurrency=3, release_data=256 * 1024,
            submission=64 * 1024, w4_clients=2, w4_ops=5, w6_file=8 * MB,
            sha_probe=16 * MB, socket_probe=32 * MB,
        )

    def student_names(self) -> list[str]:
        return [f"s{i:03d}" for i in range(self.students)]


def write_random(path: str, size: int) -> str:
    """A file of ``size`` random bytes (written 1 MiB at a time); returns its sha256."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(MB, left))
            digest.update(block)
            f.write(block)
            left -= len(block)
    return digest.hexdigest()


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MB), b""):
            digest.update(block)
    return digest.hexdigest()


class Data:
    """The input files every workload uses, made once per run under ``root``.

    Each repetition of a workload gets content of its own (W1's file, W2's and
    W5's notebooks), so a repeat measures the transfer, not our deduplication.
    """

    def __init__(self, root: str, sizes: Sizes, runs: int = 1) -> None:
        self.root = root
        self.sizes = sizes
        self.runs = runs
        self.notebook = os.path.join(root, "ps1", "ps1.ipynb")
        self.dataset = os.path.join(root, "ps1", "data", "dataset.bin")
        self.sha: dict[str, str] = {}

    def make(self) -> None:
        self.sha[self.notebook] = write_random(self.notebook, 16 * 1024)
        self.sha[self.dataset] = write_random(self.dataset, self.sizes.release_data)
        for run in range(self.runs):
            self.sha[self.w1(run)] = write_random(self.w1(run), self.sizes.w1_file)
            for student in self.sizes.student_names():
                for workload in ("W2", "W5"):
                    path = self.submission(student, workload, run)
                    self.sha[path] = write_random(path, self.sizes.submission)

    def w1(self, run: int) -> str:
        return os.path.join(self.root, "w1", f"big-{run}.bin")

    def submission(self, student: str, workload: str, run: int) -> str:
        return os.path.join(self.root, "submissions", f"{workload}-{run}", student, "ps1.ipynb")

    @property
    def release_files(self) -> list[tuple[str, str]]:
        return [("ps1.ipynb", self.notebook), ("data/dataset.bin", self.dataset)]


def _pool(fn, items: list, workers: int) -> list[BaseException]:
    """Run ``fn(item)`` for each item, ``workers`` at a time; the errors raised."""
    errors: list[BaseException] = []
    with ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(fn, item) for item in items]:
            exc = future.exception()
            if exc is not None:
                errors.append(exc)
    return errors


def _errors(errors: list[BaseException]) -> dict:
    return {"errors": len(errors), "first_error": repr(errors[0]) if errors else None}


def setup(svc, data: Data) -> None:
    """Course, roster and the ps1 release (untimed)."""
    students = data.sizes.student_names()
    svc.setup(COURSE, INSTRUCTOR, students)
    svc.release(INSTRUCTOR, COURSE, "ps1", data.release_files)


def w1(svc, pid: int, data: Data, work: str, run: int = 0) -> dict:
    """Release one big file and download it (a student), verified on arrival; the
    upload's throughput as a fraction of the physical reference measured just before,
    and of the bare transfer of the same file measured just before that."""
    dest = os.path.join(work, "w1")
    size = data.sizes.w1_file
    bare = _bare_beside(data.w1(run), data.sha[data.w1(run)], work)
    beside = physical.reference(size, 4 * size)
    upload_cpu = CpuDuring(pid)
    with PeakRss(pid) as rss:
        t0 = time.perf_counter()
        svc.post_cpu = upload_cpu
        try:
            svc.release(INSTRUCTOR, COURSE, f"w1-{run}", [("big.bin", data.w1(run))])
        finally:
            svc.post_cpu = None
        t1 = time.perf_counter()
        svc.fetch("s000", COURSE, f"w1-{run}", dest)
        t2 = time.perf_counter()
    intact = sha256_of(os.path.join(dest, "big.bin")) == data.sha[data.w1(run)]
    upload_mbps = size / MB / svc.last_post_seconds
    if "bare_beside_MBps" in bare:
        bare["upload_vs_bare"] = upload_mbps / bare["bare_beside_MBps"]
    return {
        "seconds": t2 - t0, "upload_s": t1 - t0, "upload_post_s": svc.last_post_seconds,
        "download_s": t2 - t1, "bytes": size, "intact": intact,
        "physical_beside": beside, "upload_vs_physical": upload_mbps / min(beside.values()),
        "upload_cpu": upload_cpu.numbers(), **bare, **rss.numbers(),
    }


def _bare_beside(source: str, sha256: str, work: str) -> dict:
    """The bare transfer of W1's file (:func:`physical.bare_upload`), or why it failed:
    context for the upload, not part of W1, so a failure is reported, not fatal."""
    cpu = CpuDuring()
    try:
        mbps = physical.bare_upload(source, sha256, work, cpu)
        return {"bare_beside_MBps": mbps, "bare_cpu": cpu.numbers()}
    except Exception as exc:  # noqa: BLE001 - reported in the results
        return {"bare_failed": f"{type(exc).__name__}: {exc}"[:300]}


def w2(svc, pid: int, data: Data, work: str, run: int = 0) -> dict:
    """Each student fetches ps1 and submits their notebook, ``concurrency`` at a time."""

    def student(name: str) -> None:
        svc.fetch(name, COURSE, "ps1", os.path.join(work, "w2", name))
        svc.submit(name, COURSE, "ps1", [("ps1.ipynb", data.submission(name, "W2", run))])

    with PeakRss(pid) as rss:
        t0 = time.perf_counter()
        errors = _pool(student, data.sizes.student_names(), data.sizes.concurrency)
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, **_errors(errors), **rss.numbers()}


def w3(svc, pid: int, data: Data, work: str, run: int = 0) -> dict:
    """The instructor collects every student's latest submission (the one from W2's last
    run) as each service's nbgrader exchange would: ours downloads a few files at a time,
    ngshare's asks for one submission after the other."""
    dest = os.path.join(work, "w3")
    with PeakRss(pid) as rss:
        t0 = time.perf_counter()
        count = svc.collect(INSTRUCTOR, COURSE, "ps1", dest)
        seconds = time.perf_counter() - t0
    intact = all(
        sha256_of(os.path.join(dest, s, "ps1.ipynb"))
        == data.sha[data.submission(s, "W2", data.runs - 1)]
        for s in data.sizes.student_names()
    )
    return {
        "seconds": seconds, "collected": count, "intact": intact,
        **rss.numbers(),
    }


def w4(svc, pid: int, data: Data, work: str, run: int = 0) -> dict:
    """Small reads: clients list their courses and each course's assignments, concurrently."""
    users = data.sizes.student_names()[: data.sizes.w4_clients]
    latencies: list[float] = []

    def client(user: str) -> None:
        for _ in range(data.sizes.w4_ops):
            t = time.perf_counter()
            svc.list_once(user)
            latencies.append(time.perf_counter() - t)

    with PeakRss(pid) as rss:
        t0 = time.perf_counter()
        errors = _pool(client, users, len(users))
        seconds = time.perf_counter() - t0
    latencies.sort()
    ops = len(latencies)
    return {
        "seconds": seconds, "ops": ops, "ops_per_s": ops / seconds if seconds else 0.0,
        "p50_ms": 1000 * latencies[ops // 2] if ops else None,
        "p95_ms": 1000 * latencies[min(ops - 1, int(ops * 0.95))] if ops else None,
        **_errors(errors), **rss.numbers(),
    }


def w5(svc, pid: int, data: Data, work: str, run: int = 0) -> dict:
    """Every student resubmits: a changed notebook plus the unchanged dataset fetched in W2."""

    def student(name: str) -> None:
        dataset = os.path.join(work, "w2", name, "data", "dataset.bin")
        svc.submit(
            name, COURSE, "ps1",
            [("ps1.ipynb", data.submission(name, "W5", run)), ("data/dataset.bin", dataset)],
        )

    content0, wire0 = svc.content_sent, svc.sent.bytes
    with PeakRss(pid) as rss:
        t0 = time.perf_counter()
        errors = _pool(student, data.sizes.student_names(), data.sizes.concurrency)
        seconds = time.perf_counter() - t0
    content = svc.content_sent - content0
    return {
        "seconds": seconds, **_errors(errors),
        "content_bytes": content,
        "dataset_bytes_reuploaded": content - data.sizes.students * data.sizes.submission,
        "wire_bytes": svc.sent.bytes - wire0,
        **rss.numbers(),
    }


def w6(svc, pid: int, data: Data, work: str, run: int = 0) -> dict:
    """Ours alone: a very large file released and downloaded intact."""
    src = os.path.join(work, "w6-src", "huge.bin")
    sha = write_random(src, data.sizes.w6_file)
    dest = os.path.join(work, "w6")
    try:
        with PeakRss(pid) as rss:
            t0 = time.perf_counter()
            svc.release(INSTRUCTOR, COURSE, "w6", [("huge.bin", src)])
            t1 = time.perf_counter()
            svc.fetch("s000", COURSE, "w6", dest)
            t2 = time.perf_counter()
        intact = sha256_of(os.path.join(dest, "huge.bin")) == sha
    finally:
        os.unlink(src)
        if os.path.exists(os.path.join(dest, "huge.bin")):
            os.unlink(os.path.join(dest, "huge.bin"))
    return {
        "seconds": t2 - t0, "upload_s": t1 - t0, "download_s": t2 - t1,
        "bytes": data.sizes.w6_file, "intact": intact,
        **rss.numbers(),
    }


WORKLOADS = {"W1": w1, "W2": w2, "W3": w3, "W4": w4, "W5": w5}
