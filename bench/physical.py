"""What this machine can do at best, measured in the same run: sha256 and loopback TCP."""

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
