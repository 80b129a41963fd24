"""What this machine can do at best, measured in the same run (sha256 and loopback
TCP; :func:`reference`), the least any upload costs here (:func:`bare_upload`), and
the step that levels its state before each timed step (:func:`settle`)."""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import subprocess
import sys
import threading
import time

MB = 1024 * 1024
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def bare_upload(source: str, sha256: str, directory: str) -> float:
    """MB/s of the least an upload of ``source`` costs on this machine: no HTTP,
    GraphQL or database, only the bytes.  Another process receives them over
    loopback TCP, 1 MiB at a time, into the service's own staging file in
    ``directory`` (written once, hashed behind by its helper thread), while this one
    sends them as the client does (1 MiB reads, ``sendall``).  Measured beside a
    W1 upload, it tells the machine's state at that moment apart from what the
    service adds."""
    receiver = subprocess.Popen(
        [sys.executable, "-m", "bench.physical", os.path.abspath(directory)],
        stdout=subprocess.PIPE, text=True, cwd=_REPO,
    )
    try:
        assert receiver.stdout is not None
        port = int(receiver.stdout.readline())
        size = os.path.getsize(source)
        buffer = memoryview(bytearray(MB))
        with socket.create_connection(("127.0.0.1", port)) as out, \
                open(source, "rb", buffering=0) as f:
            t0 = time.perf_counter()
            out.sendall(struct.pack("!Q", size))
            while n := f.readinto(buffer):
                out.sendall(buffer[:n])
            digest = out.makefile("rb").read(64).decode()
            seconds = time.perf_counter() - t0
        receiver.wait(timeout=30)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    if digest != sha256:
        raise RuntimeError(f"the bare upload of {source} arrived as {digest or 'nothing'}")
    return (size / MB) / seconds


def _receive(directory: str) -> None:
    """The receiving side of :func:`bare_upload` (``python -m bench.physical DIR``)."""
    from ngshare_gql.storage.staging import StagedFile, file_system_type, maps_safely

    mapped = maps_safely(file_system_type(directory))
    server = socket.create_server(("127.0.0.1", 0))
    print(server.getsockname()[1], flush=True)
    conn, _ = server.accept()
    with conn, server:
        (size,) = struct.unpack("!Q", conn.recv(8, socket.MSG_WAITALL))
        staged = StagedFile(directory, size, mapped)
        buffer = memoryview(bytearray(MB))
        try:
            received = 0
            while received < size:
                filled = 0
                while filled < MB and received + filled < size:
                    n = conn.recv_into(buffer[filled:], min(MB - filled, size - received - filled))
                    if not n:
                        return  # the sender went away: it reports no digest
                    filled += n
                staged.write(buffer[:filled])
                received += filled
            conn.sendall(staged.sha256.encode())
        finally:
            staged.discard()


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


if __name__ == "__main__":
    _receive(sys.argv[1])
