"""Who had the CPU while a timed step ran: the server, the benchmark's client, or
some other task.

The upload target is a fraction of what this 2-core machine can do, so a step that
ran while another task took one of the two cores (the VM's page reclaimer
``kdamond``, a kworker writing pages back) was slowed by something neither service
does.  And a step whose own tasks needed more CPU than usual for the same bytes points
the other way, at the memory it touched.  Each task's run time comes, in
nanoseconds, from ``/proc/PID/task/TID/schedstat``, read just before the step and just
after it, never during it.  A task that started and ended within the step is missed.
"""

from __future__ import annotations

import glob
import os

from bench.rss import tree_pids

_NS_PER_MS = 1_000_000
TOP = 3  # other tasks named in a result


def snapshot() -> dict[int, tuple[int, str, int]]:
    """Every task on the machine: thread id -> (process id, name, run time in ns)."""
    tasks: dict[int, tuple[int, str, int]] = {}
    for path in glob.glob("/proc/[0-9]*/task/[0-9]*"):
        try:
            with open(f"{path}/schedstat") as f:
                ran = int(f.read().split()[0])
            with open(f"{path}/comm") as f:
                name = f.read().strip()
        except (OSError, ValueError, IndexError):  # the task ended meanwhile
            continue
        pid, tid = path.split("/")[2], path.split("/")[4]
        tasks[int(tid)] = (int(pid), name, ran)
    return tasks


class CpuDuring:
    """Context manager: CPU time of the server's process tree, of this process and
    its children (the client; a bare transfer's receiver), and of everything else,
    over the ``with`` block."""

    def __init__(self, server_pid: int | None = None) -> None:
        self.server_pid = server_pid
        self.used: dict[str, float] = {}
        self.others: list[tuple[str, float]] = []

    def __enter__(self) -> CpuDuring:
        self._before = snapshot()
        return self

    def __exit__(self, *exc: object) -> None:
        after = snapshot()
        server = set(tree_pids(self.server_pid)) if self.server_pid else set()
        client = set(tree_pids(os.getpid()))
        used = {"server": 0, "client": 0, "others": 0}
        others: dict[str, int] = {}
        for tid, (pid, name, ran) in after.items():
            spent = ran - self._before.get(tid, (pid, name, 0))[2]
            if spent <= 0:
                continue
            side = "server" if pid in server else "client" if pid in client else "others"
            used[side] += spent
            if side == "others":
                others[name] = others.get(name, 0) + spent
        self.used = {side: ns / _NS_PER_MS for side, ns in used.items()}
        ranked = sorted(others.items(), key=lambda item: -item[1])[:TOP]
        self.others = [(name, ns / _NS_PER_MS) for name, ns in ranked]

    def numbers(self) -> dict:
        """Milliseconds of CPU per side, and the busiest other tasks by name."""
        return {
            **{f"{side}_ms": round(ms, 1) for side, ms in self.used.items()},
            "busiest_others": [[name, round(ms, 1)] for name, ms in self.others],
        }


def describe(cpu: dict | None) -> str:
    """One run's accounting for the report, e.g. ``others 46 ms (kdamond.0 45 ms)``."""
    if not cpu:
        return "-"
    named = ", ".join(f"{name} {ms:.0f} ms" for name, ms in cpu["busiest_others"] if ms >= 1)
    ours = f"server {cpu['server_ms']:.0f}, " if cpu["server_ms"] else ""
    return (f"{ours}client {cpu['client_ms']:.0f}, others {cpu['others_ms']:.0f} ms"
            + (f" ({named})" if named else ""))
