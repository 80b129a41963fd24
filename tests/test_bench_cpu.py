"""The benchmark's CPU accounting: whose tasks ran during a timed step."""

from __future__ import annotations

import subprocess
import sys
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


def test_a_task_of_no_side_is_counted_as_others_by_name():
    with CpuDuring() as cpu:
        subprocess.run([sys.executable, "-c", ORPHAN_SPINNER, "0.4", "bench-intruder"], check=True)
        time.sleep(0.6)  # the orphan spins meanwhile; this process sleeps
    assert cpu.used["others"] >= 150
    assert cpu.others[0][0] == "bench-intruder" and cpu.others[0][1] >= 150
    assert cpu.used["client"] < 100  # the sleeping test and its short-lived child


def test_the_server_tree_and_the_client_are_told_apart():
    server = subprocess.Popen(
        [sys.executable, "-c", SPINNER, "0.3"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout.readline().strip() == "ready"
        with CpuDuring(server.pid) as cpu:
            server.stdin.write("go\n")
            server.stdin.flush()
            assert server.stdout.readline().strip() == "done"
            spin(0.3)
    finally:
        server.kill()
        server.wait()
    assert cpu.used["server"] >= 150  # the child given as the server is not the client
    assert cpu.used["client"] >= 150
    assert cpu.used["others"] < 150
    numbers = cpu.numbers()
    assert numbers["server_ms"] == pytest.approx(cpu.used["server"], abs=0.1)
    assert isinstance(numbers["busiest_others"], list)


def test_without_a_server_its_children_are_the_clients():
    child = subprocess.Popen([sys.executable, "-c", SPINNER, "0.3"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        with CpuDuring() as cpu:
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline().strip() == "done"
    finally:
        child.kill()
        child.wait()
    assert cpu.used["server"] == 0 and cpu.used["client"] >= 150


def test_each_run_keeps_its_own_accounting_and_the_report_lists_them():
    quiet = {"server_ms": 70.0, "client_ms": 22.0, "others_ms": 0.4,
             "busiest_others": [["kworker/0:1", 0.4]]}
    busy = {"server_ms": 71.0, "client_ms": 23.0, "others_ms": 46.0,
            "busiest_others": [["kdamond.0", 45.2], ["kworker/1:2", 1.2], ["kswapd0", 0.3]]}
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
    assert row[2] == ("server 71, client 23, others 46 ms (kdamond.0 45 ms, kworker/1:2 1 ms); "
                      "server 70, client 22, others 0 ms")


def test_a_run_without_accounting_reads_as_a_dash():
    assert describe(None) == "-"
    assert describe({"server_ms": 0, "client_ms": 40.2, "others_ms": 3.0,
                     "busiest_others": [["kworker/u4:0", 2.6]]}) == (
        "client 40, others 3 ms (kworker/u4:0 3 ms)")
