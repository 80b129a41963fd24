"""What this machine can do at best, measured in the same run (sha256 and loopback
TCP; :func:`reference`), an upload doing only the work every upload does
(:func:`bare_upload`), and the step that levels its state before each timed step
(:func:`settle`)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import socket
import subprocess
import sys
import threading
import time

from bench.cpu import CpuDuring

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


BARE_TIMEOUT = 60.0  # seconds any one step of a bare transfer may take


def bare_upload(
    source: str, sha256: str, directory: str, cpu: CpuDuring | None = None
) -> float:
    """MB/s of an upload of ``source`` doing only the work every upload here does:
    another process receives it over loopback TCP, 1 MiB at a time, into the
    service's own staging file in ``directory`` (written once, hashed behind by its
    helper thread), while this one sends it as the client does (1 MiB reads,
    ``sendall``); no HTTP, GraphQL or database.  Measured just before a W1 upload, it
    shows how fast the machine moved the same bytes at about the same moment.  ``cpu``,
    if given, accounts for the timed transfer alone."""
    size = os.path.getsize(source)
    digest, seconds = "", 0.0
    with subprocess.Popen(
        [sys.executable, "-m", "bench.physical", os.path.abspath(directory), str(size)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=_REPO,
    ) as receiver:
        try:
            assert receiver.stdout is not None
            if select.select([receiver.stdout], [], [], BARE_TIMEOUT)[0]:
                port = receiver.stdout.readline().strip()
                if port.isdigit():
                    with contextlib.suppress(OSError):  # the receiver failed: it says why
                        digest, seconds = _send(source, size, int(port), cpu)
        finally:
            try:
                errors = receiver.communicate(timeout=BARE_TIMEOUT)[1]
            except subprocess.TimeoutExpired:
                receiver.kill()
                errors = receiver.communicate()[1]
    if digest != sha256:
        said = errors.strip().splitlines()[-1:] if errors else []
        raise RuntimeError(
            f"the bare upload of {source} arrived as {digest or 'nothing'}"
            + (f" (the receiver: {said[0]})" if said else "")
        )
    return (size / MB) / seconds


def _send(source: str, size: int, port: int, cpu: CpuDuring | None) -> tuple[str, float]:
    """Send ``size`` bytes of ``source`` to the receiver; (its sha256, seconds)."""
    buffer = memoryview(bytearray(MB))
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=BARE_TIMEOUT) as out, \
            open(source, "rb", buffering=0) as f, cpu or contextlib.nullcontext():
        t0 = time.perf_counter()
        while sent < size and (n := f.readinto(buffer[: min(MB, size - sent)])):
            out.sendall(buffer[:n])
            sent += n
        out.shutdown(socket.SHUT_WR)  # a file that shrank: the receiver sees the end
        digest = out.recv(64, socket.MSG_WAITALL).decode()
        seconds = time.perf_counter() - t0
    if sent != size:
        raise RuntimeError(f"{source} changed size during the bare upload")
    return digest, seconds


def _receive(directory: str, size: int) -> None:
    """The receiving side of :func:`bare_upload` (``python -m bench.physical DIR SIZE``)."""
    from ngshare_gql.storage.staging import StagedFile, file_system_type, maps_safely

    mapped = maps_safely(file_system_type(directory))
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(BARE_TIMEOUT)
    print(server.getsockname()[1], flush=True)
    conn, _ = server.accept()
    conn.setblocking(True)  # as gunicorn reads an upload; the sender's end comes as EOF
    with conn, server:
        staged = StagedFile(directory, size, mapped)
        buffer = memoryview(bytearray(MB))
        try:
            received = 0
            while received < size:
                filled = 0
                while filled < MB and received + filled < size:
                    n = conn.recv_into(buffer[filled:], min(MB - filled, size - received - filled))
                    if not n:
                        sys.exit(f"the sender stopped after {received + filled} of {size} bytes")
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
    _receive(sys.argv[1], int(sys.argv[2]))
