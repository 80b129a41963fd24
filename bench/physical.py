"""What this machine can do at best, measured in the same run (sha256 and loopback
TCP; :func:`reference`), and the step that levels its state before each timed step
(:func:`settle`)."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time

MB = 1024 * 1024


def sha256_throughput(total: int) -> float:
    """MB/s of hashlib.sha256 over ``total`` bytes fed 1 MiB at a time."""
    block = os.urandom(MB)
    digest = hashlib.sha256()
    t0 = time.perf_counter()
    for _ in range(max(1, total // MB)):
        digest.update(block)
    return (total / MB) / (time.perf_counter() - t0)


def loopback_throughput(total: int) -> float:
    """MB/s of one TCP connection on 127.0.0.1, 1 MiB sends, received into a buffer."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    received = 0

    def sink() -> None:
        nonlocal received
        conn, _ = server.accept()
        buf = bytearray(MB)
        with conn:
            while n := conn.recv_into(buf):
                received += n

    thread = threading.Thread(target=sink)
    thread.start()
    block = memoryview(os.urandom(MB))
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as out:
        for _ in range(max(1, total // MB)):
            out.sendall(block)
    thread.join()
    seconds = time.perf_counter() - t0
    server.close()
    return (received / MB) / seconds


def reference(sha_probe: int, socket_probe: int) -> dict[str, float]:
    """Both references now: measured beside a timed upload, so that its fraction of
    them compares two things the machine did at the same time."""
    return {
        "sha256_MBps": sha256_throughput(sha_probe),
        "loopback_MBps": loopback_throughput(socket_probe),
    }


WARM_UP = 256 * MB


def settle(directory: str, warm_up: int = WARM_UP) -> None:
    """Level the machine before a timed step, so a step measures its service.

    First write back the dirty pages earlier steps left (input files, the other
    service's uploads), so neither service is throttled for the other's writes.
    Then write and delete a scratch file of ``warm_up`` bytes: this VM's
    hypervisor takes back guest memory that has been free a while (free page
    reporting, DAMON reclaim) and charges about 8 µs per 4 KiB page when it is
    touched again, which makes the page cache a step fills 8-10x dearer, or not,
    by the machine's memory history.  Memory freed just before the step is served
    again at once (see "Fresh memory" in bench/RESULTS.md).
    """
    os.sync()
    path = os.path.join(directory, "warm-up.bin")
    block = bytes(MB)
    with open(path, "wb", buffering=0) as f:
        for _ in range(warm_up // MB):
            f.write(block)
    os.unlink(path)
