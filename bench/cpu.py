"""Where the CPU went while a timed step ran: to the server, the benchmark's client,
the benchmark's other processes, kernel threads, other processes, or nowhere.

The upload target is a fraction of what this 2-core machine can do, so it matters
whether a slow step shared the cores with work that is not the step's (the VM's page
reclaimer ``kdamond``, another program), needed more CPU than usual for the same bytes,
or left the cores idle (waiting).  Read just before the step and just after it, never
during it, and outside the step's own accounting:

* ``client``: this process (the runner, every thread), ``time.process_time_ns``;
* ``server``: the server's process tree, and ``bench``: this process's other
  descendants (the stand-in hub, the service not being measured, the memory sampler, a
  bare transfer's receiver; both services when there is no server), each process's CPU
  time from ``/proc/PID/stat``, which counts its threads that ended meanwhile (the
  helper that hashes an upload ends with it), in the kernel's 10 ms clock ticks: each
  process's figure is within about 20 ms;
* ``kernel`` (kernel threads, some working for the step: ``ksoftirqd`` carries loopback
  traffic, kworkers write pages back) and ``others`` (every other process): each
  task's run time from ``/proc/PID/task/TID/schedstat``, in nanoseconds, with the
  busiest by name;
* ``idle`` and ``steal``: the whole machine's, from ``/proc/stat``, in clock ticks;
  and its context switches (``ctxt``): each is a task that stopped, most often to wait
  for another, and waking it on the other vCPU costs a trip through the hypervisor here.

A task or process that started and ended within the step is missed.
"""

from __future__ import annotations

import contextlib
import glob
import os
import time

from bench.rss import tree_pids

_MS_PER_TICK = 1000 / os.sysconf("SC_CLK_TCK")
_KTHREADD = 2  # parent of every kernel thread
TOP = 3  # other tasks named in a result
SIDES = ("server", "client", "bench", "kernel", "others", "idle", "steal")


def _read(path: str) -> str | None:
    with contextlib.suppress(OSError), open(path) as f:
        return f.read()
    return None


def _stat_fields(pid: int) -> list[str]:
    """``/proc/PID/stat`` after the process's name (which may hold spaces and ')')."""
    stat = _read(f"/proc/{pid}/stat")
    return stat.rpartition(")")[2].split() if stat else []


def _process_ticks(pid: int) -> int:
    """User + system clock ticks of a process, its ended threads included; 0 if gone."""
    fields = _stat_fields(pid)
    return int(fields[11]) + int(fields[12]) if fields else 0


def _is_kernel_thread(pid: int) -> bool:
    fields = _stat_fields(pid)
    return pid == _KTHREADD or (bool(fields) and int(fields[1]) == _KTHREADD)


def _machine() -> dict[str, int]:
    """The whole machine's idle and steal clock ticks and its context switches so far."""
    lines = (_read("/proc/stat") or "cpu 0 0 0 0 0 0 0 0\nctxt 0").splitlines()
    cpu = lines[0].split()
    switches = next((int(line.split()[1]) for line in lines if line.startswith("ctxt ")), 0)
    return {"idle": int(cpu[4]), "steal": int(cpu[8]), "switches": switches}


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
    """Context manager: milliseconds of CPU each side used over the ``with`` block
    (see the module's docstring); ``server_pid`` is the server's process tree."""

    def __init__(self, server_pid: int | None = None) -> None:
        self.server_pid = server_pid
        self.used: dict[str, float] = {}
        self.busiest: list[tuple[str, int, float]] = []  # (name, process id, ms)
        self.switches = 0  # the machine's context switches

    def __enter__(self) -> CpuDuring:
        mine = os.getpid()
        self._server = set(tree_pids(self.server_pid)) if self.server_pid else set()
        self._bench = set(tree_pids(mine)) - self._server - {mine}
        self._tasks = _tasks()
        # Read last on the way in and first on the way out: the scans above are the
        # runner's own CPU, not the step's.
        self._ticks = {pid: _process_ticks(pid) for pid in self._server | self._bench}
        self._machine = _machine()
        self._client = time.process_time_ns()
        return self

    def __exit__(self, *exc: object) -> None:
        client = time.process_time_ns() - self._client
        machine = _machine()
        ticks = {pid: _process_ticks(pid) - before for pid, before in self._ticks.items()}
        tasks = _tasks()
        ours = self._server | self._bench | {os.getpid()}
        spent: dict[tuple[str, int], int] = {}
        for tid, (pid, name, ran) in tasks.items():
            more = ran - self._tasks.get(tid, (pid, name, 0))[2]
            if pid not in ours and more > 0:
                spent[name, pid] = spent.get((name, pid), 0) + more
        kernel = {pid for _, pid in spent if _is_kernel_thread(pid)}
        self.used = {
            "server": _MS_PER_TICK * sum(max(0, ticks[p]) for p in self._server),
            "client": client / 1e6,
            "bench": _MS_PER_TICK * sum(max(0, ticks[p]) for p in self._bench),
            "kernel": sum(ns for (_, pid), ns in spent.items() if pid in kernel) / 1e6,
            "others": sum(ns for (_, pid), ns in spent.items() if pid not in kernel) / 1e6,
            **{k: _MS_PER_TICK * (machine[k] - self._machine[k]) for k in ("idle", "steal")},
        }
        self.switches = machine["switches"] - self._machine["switches"]
        ranked = sorted(spent.items(), key=lambda item: -item[1])[:TOP]
        self.busiest = [(name, pid, ns / 1e6) for (name, pid), ns in ranked]

    def numbers(self) -> dict:
        """Milliseconds per side, and the busiest tasks outside the benchmark: name,
        process id, milliseconds and the process's command line (if still there)."""
        return {
            **{f"{side}_ms": round(ms, 1) for side, ms in self.used.items()},
            "switches": self.switches,
            "busiest_outside": [
                [name, pid, round(ms, 1),
                 (_read(f"/proc/{pid}/cmdline") or "").replace("\0", " ").strip()[:120]]
                for name, pid, ms in self.busiest
            ],
        }


def describe(cpu: dict | None) -> str:
    """One run's accounting for the report, e.g. ``server 60, client 20, bench 0,
    kernel 2, others 46 (kdamond.0 45), idle 30, steal 0 ms, 900 switches``: the busiest
    tasks outside the benchmark, kernel threads or not, are named after ``others``."""
    if not cpu:
        return "-"
    named = ", ".join(f"{name} {ms:.0f}" for name, _, ms, _ in cpu["busiest_outside"] if ms >= 1)
    parts = []
    for side in SIDES:
        if f"{side}_ms" in cpu:
            parts.append(f"{side} {cpu[f'{side}_ms']:.0f}")
            if side == "others" and named:
                parts[-1] += f" ({named})"
    switches = f", {cpu['switches']} switches" if "switches" in cpu else ""
    return ", ".join(parts) + " ms" + switches
