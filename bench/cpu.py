"""Who had the CPU while a timed step ran: the server, the benchmark's client, the
benchmark's other processes, or some other task on the machine.

The upload target is a fraction of what this 2-core machine can do, so a step that
ran while another task took one of the two cores (the VM's page reclaimer
``kdamond``, a kworker writing pages back) was slowed by something neither service
does; and a step whose own processes needed more CPU than usual for the same bytes
points the other way, at the memory it touched.  Read just before the step and just
after it, never during it:

* the server's process tree, this process (the client) and this process's other
  descendants (the stand-in hub, the other service, the memory sampler, a bare
  transfer's receiver): each process's CPU time from ``/proc/PID/stat``, which counts
  its threads that ended meanwhile (the staging helper that hashes an upload ends with
  it), in the kernel's 10 ms clock ticks;
* every other task: its run time from ``/proc/PID/task/TID/schedstat``, in
  nanoseconds, by name.  A task that started and ended within the step is missed.
"""

from __future__ import annotations

import contextlib
import glob
import os

from bench.rss import tree_pids

_MS_PER_TICK = 1000 / os.sysconf("SC_CLK_TCK")
TOP = 3  # other tasks named in a result


def _read(path: str) -> str | None:
    with contextlib.suppress(OSError), open(path) as f:
        return f.read()
    return None


def _process_ticks(pid: int) -> int:
    """User + system clock ticks of a process, its ended threads included; 0 if gone."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return 0
    fields = stat.rpartition(")")[2].split()  # after the name, which may hold spaces
    return int(fields[11]) + int(fields[12])  # utime, stime


def _tasks() -> dict[int, tuple[int, str, int]]:
    """Every task on the machine: thread id -> (process id, name, run time in ns)."""
    tasks: dict[int, tuple[int, str, int]] = {}
    for path in glob.glob("/proc/[0-9]*/task/[0-9]*"):
        ran, name = _read(f"{path}/schedstat"), _read(f"{path}/comm")
        if ran and name:  # else the task ended meanwhile
            _, _, pid, _, tid = path.split("/")
            tasks[int(tid)] = (int(pid), name.strip(), int(ran.split()[0]))
    return tasks


class CpuDuring:
    """Context manager: milliseconds of CPU used over the ``with`` block by the server
    tree (``server_pid``), the client, the benchmark's other processes and all else."""

    def __init__(self, server_pid: int | None = None) -> None:
        self.server_pid = server_pid
        self.used: dict[str, float] = {}
        self.others: list[tuple[str, int, float]] = []  # (name, process id, ms)

    def _sides(self) -> dict[str, set[int]]:
        server = set(tree_pids(self.server_pid)) if self.server_pid else set()
        mine = os.getpid()
        return {
            "server": server,
            "client": {mine},
            "bench": set(tree_pids(mine)) - server - {mine},
        }

    def _ticks(self, sides: dict[str, set[int]]) -> dict[int, int]:
        return {pid: _process_ticks(pid) for pids in sides.values() for pid in pids}

    def __enter__(self) -> CpuDuring:
        self._sides_before = self._sides()
        self._ticks_before = self._ticks(self._sides_before)
        self._tasks_before = _tasks()
        return self

    def __exit__(self, *exc: object) -> None:
        tasks = _tasks()
        sides = self._sides()
        ticks = self._ticks(sides)
        self.used = {
            side: _MS_PER_TICK * sum(
                max(0, ticks[pid] - self._ticks_before.get(pid, 0)) for pid in pids
            )
            for side, pids in sides.items()
        }
        ours = set().union(*sides.values(), *self._sides_before.values())
        others: dict[tuple[str, int], int] = {}
        for tid, (pid, name, ran) in tasks.items():
            spent = ran - self._tasks_before.get(tid, (pid, name, 0))[2]
            if pid not in ours and spent > 0:
                others[name, pid] = others.get((name, pid), 0) + spent
        self.used["others"] = sum(others.values()) / 1e6
        ranked = sorted(others.items(), key=lambda item: -item[1])[:TOP]
        self.others = [(name, pid, ns / 1e6) for (name, pid), ns in ranked]

    def numbers(self) -> dict:
        """Milliseconds of CPU per side, and the busiest other tasks: name, process id,
        milliseconds and the process's command line (if it is still there)."""
        return {
            **{f"{side}_ms": round(ms, 1) for side, ms in self.used.items()},
            "busiest_others": [
                [name, pid, round(ms, 1),
                 (_read(f"/proc/{pid}/cmdline") or "").replace("\0", " ").strip()[:120]]
                for name, pid, ms in self.others
            ],
        }


def describe(cpu: dict | None) -> str:
    """One run's accounting for the report, e.g.
    ``server 60, client 20, bench 0, others 46 ms (kdamond.0 45 ms)``."""
    if not cpu:
        return "-"
    named = ", ".join(
        f"{name} {ms:.0f} ms" for name, _, ms, _ in cpu["busiest_others"] if ms >= 1
    )
    return (
        ", ".join(f"{side} {cpu[f'{side}_ms']:.0f}" for side in ("server", "client", "bench"))
        + f", others {cpu['others_ms']:.0f} ms" + (f" ({named})" if named else "")
    )
