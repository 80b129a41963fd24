"""The benchmark's CPU accounting: whose tasks ran during a timed step."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from bench.__main__ import _median
from bench.cpu import CpuDuring, describe
from bench.report import OURS, targets

# Spins for the seconds given, under the name given, in a process that is no child of
# the test: it forks, and the parent exits at once, so the spinner's parent is init.
ORPHAN_SPINNER = """
import os, sys, time
if os.fork():
    sys.exit(0)
with open("/proc/self/comm", "w") as f:
    f.write(sys.argv[2])
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    pass
time.sleep(2)  # still there when the step ends: a task gone by then is missed
"""

SPINNER = """
import sys, time
print("ready", flush=True)
sys.stdin.readline()
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    pass
print("done", flush=True)
"""


def spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_a_task_of_no_side_is_counted_as_others_by_name_and_process():
    with CpuDuring() as cpu:
        subprocess.run([sys.executable, "-c", ORPHAN_SPINNER, "0.4", "bench-intruder"], check=True)
        time.sleep(0.6)  # the orphan spins meanwhile; this process sleeps
    assert cpu.used["others"] >= 150
    name, pid, ms = cpu.busiest[0]
    assert name == "bench-intruder" and ms >= 150 and pid != os.getpid()
    assert cpu.used["client"] < 100  # the sleeping test
    assert cpu.used["kernel"] < 150  # a process, not a kernel thread
    busiest = cpu.numbers()["busiest_outside"][0]
    assert busiest[:2] == [name, pid]
    assert busiest[3].startswith(f"{sys.executable} -c")  # its command line: the spinner's


def test_the_server_tree_the_client_and_the_benchs_other_processes_are_told_apart():
    server = subprocess.Popen(
        [sys.executable, "-c", SPINNER, "0.3"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )
    helper = subprocess.Popen(
        [sys.executable, "-c", SPINNER, "0.3"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for child in (server, helper):
            assert child.stdout.readline().strip() == "ready"
        with CpuDuring(server.pid) as cpu:
            for child in (server, helper):
                child.stdin.write("go\n")
                child.stdin.flush()
            for child in (server, helper):
                assert child.stdout.readline().strip() == "done"
            spin(0.3)
    finally:
        for child in (server, helper):
            child.kill()
            child.wait()
    # The child given as the server is the server; the other child is the bench's.
    assert cpu.used["server"] >= 150 and cpu.used["bench"] >= 150
    assert cpu.used["client"] >= 150
    assert cpu.used["others"] < 150
    assert cpu.numbers()["server_ms"] == pytest.approx(cpu.used["server"], abs=0.1)


def test_a_thread_that_ended_within_the_step_is_counted():
    with CpuDuring() as cpu:
        worker = threading.Thread(target=spin, args=(0.3,))
        worker.start()
        worker.join()
    assert cpu.used["client"] >= 150


def test_a_busy_step_leaves_less_idle_than_a_sleeping_one():
    """The machine's idle time: two cores over a 0.5 s sleep are mostly idle; with both
    spinning (this process and a child), hardly."""
    with CpuDuring() as asleep:
        time.sleep(0.5)
    child = subprocess.Popen([sys.executable, "-c", SPINNER, "0.5"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        with CpuDuring() as busy:
            child.stdin.write("go\n")
            child.stdin.flush()
            spin(0.5)
            assert child.stdout.readline().strip() == "done"
    finally:
        child.kill()
        child.wait()
    assert asleep.used["idle"] >= 500  # of about 1000 ms of two cores' time
    assert busy.used["idle"] < asleep.used["idle"] - 300
    assert asleep.used["steal"] >= 0 and "steal_ms" in asleep.numbers()


def test_tasks_handing_over_to_each_other_are_counted_as_context_switches():
    """Two processes passing a byte back and forth 5000 times switch at least 10000
    times; the machine idling as long switches far less."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys\nwhile sys.stdin.buffer.read(1):\n"
         "    sys.stdout.buffer.write(b'x'); sys.stdout.buffer.flush()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
    )
    try:
        with CpuDuring() as busy:
            for _ in range(5000):
                child.stdin.write(b"x")
                assert child.stdout.read(1) == b"x"
        seconds = max(0.1, (busy.used["client"] + busy.used["bench"]) / 1000)
        with CpuDuring() as asleep:
            time.sleep(seconds)
    finally:
        child.kill()
        child.wait()
    assert busy.switches >= 10000
    assert asleep.switches < busy.switches / 2
    assert busy.numbers()["switches"] == busy.switches


def test_each_run_keeps_its_own_accounting_and_the_report_lists_them():
    quiet = {"server_ms": 70.0, "client_ms": 20.0, "bench_ms": 0.0, "kernel_ms": 0.4,
             "others_ms": 0.0, "idle_ms": 10.0, "steal_ms": 0.0,
             "busiest_outside": [["kworker/0:1", 31, 0.4, ""]]}
    busy = {"server_ms": 70.0, "client_ms": 30.0, "bench_ms": 10.0, "kernel_ms": 46.5,
            "others_ms": 3.0, "idle_ms": 0.0, "steal_ms": 10.0, "switches": 1200,
            "busiest_outside": [["kdamond.0", 77, 45.2, ""], ["top", 900, 3.0, "top"],
                                ["kswapd0", 60, 0.3, ""]]}
    merged = _median([
        {"seconds": 0.20, "upload_post_s": 0.09, "upload_vs_physical": 0.4, "upload_cpu": busy},
        {"seconds": 0.21, "upload_post_s": 0.05, "upload_vs_physical": 0.6, "upload_cpu": quiet,
         "bare_failed": "RuntimeError: no port"},
    ])
    assert merged["upload_cpu_runs"] == [busy, quiet]
    assert "bare_cpu_runs" not in merged
    results = {"physical": {"sha256_MBps": 1700.0, "loopback_MBps": 4000.0},
               "workloads": {"W1": {OURS: {**merged, "bytes": 50 * 2**20}}}}
    row = next(r for r in targets(results) if r[0].startswith("CPU time during each upload"))
    assert row[1] == "-" and row[3] is None
    assert row[2] == (
        "server 70, client 30, bench 10, kernel 46, others 3 (kdamond.0 45, top 3), idle 0, "
        "steal 10 ms, 1200 switches; "
        "server 70, client 20, bench 0, kernel 0, others 0, idle 10, steal 0 ms"
    )


def test_a_run_without_accounting_reads_as_a_dash():
    assert describe(None) == "-"
