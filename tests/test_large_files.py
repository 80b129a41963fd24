"""A 200 MB file through real gunicorn: intact both ways, and the server stays lean."""

from __future__ import annotations

import contextlib
import os
import threading
import time

import psutil
import pytest

from ngshare_gql.client import Client, LocalFile
from tests.servers import create_course, gunicorn_server, service_env

MB = 1024 * 1024

RELEASE = """mutation($files: [FileInput!]!) {
  releaseAssignment(courseId: "big", name: "data", files: $files) { files { path sha256 url size } }
}"""


class PeakRSS:
    """Samples the summed RSS of a process tree in the background."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def current(self) -> int:
        procs = [self.root, *self.root.children(recursive=True)]
        total = 0
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += p.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            time.sleep(0.02)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def gunicorn_pid(port: int) -> int:
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
            return psutil.Process(conn.pid).pid
    raise RuntimeError("gunicorn not found")


@pytest.mark.slow
@pytest.mark.parametrize("store", ["sql", "filesystem"])
def test_200mb_round_trip_keeps_server_memory_flat(tmp_path, store):
    source = tmp_path / "big.bin"
    with open(source, "wb") as f:
        block = os.urandom(MB)
        for i in range(200):
            f.write(i.to_bytes(8, "big") + block[8:])
    local = LocalFile.scan("big.bin", str(source))
    env = service_env(
        tmp_path,
        NGSHARE_MAX_FILE_SIZE=str(300 * MB),
        NGSHARE_BLOB_STORE=store,
        NGSHARE_BLOB_DIR=str(tmp_path / "blobs"),
    )
    with gunicorn_server(env, workers=1, threads=4) as url:
        port = int(url.split(":")[2].split("/")[0])
        admin = Client(url, "admin", timeout=300)
        create_course(admin, "big", ["prof"])
        prof = Client(url, "prof", timeout=300)
        prof.execute("{ me { name } }")  # warm up the worker before measuring idle
        with PeakRSS(gunicorn_pid(port)) as rss:
            idle = rss.current()
            variables = {"files": [local.as_input()]}
            data = prof.execute_with_files(RELEASE, variables, {"files.0.content": local})
            (stored,) = data["releaseAssignment"]["files"]
            assert stored["sha256"] == local.sha256 and stored["size"] == 200 * MB
            dest = tmp_path / "back.bin"
            prof.download(stored["url"], str(dest), stored["sha256"], stored["size"])
        assert LocalFile.scan("x", str(dest)).sha256 == local.sha256
        growth = (rss.peak - idle) / MB
        print(f"{store}: idle {idle / MB:.0f} MB, peak {rss.peak / MB:.0f} MB, +{growth:.0f} MB")
        assert growth < 100, f"server RSS grew by {growth:.0f} MB during a 200 MB transfer"
