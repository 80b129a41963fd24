"""Peak memory of a server's whole process tree, sampled in the background.

RSS is summed over the tree as the brief asks (forked workers' shared pages are
counted once per process); PSS splits shared pages, so it is what the tree holds.
"""

from __future__ import annotations

import contextlib
import threading

import psutil

MB = 1024 * 1024


def tree_pids(pid: int) -> list[int]:
    """``pid`` and all its descendants (gunicorn master + workers)."""
    try:
        return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    except psutil.Error:
        return []


def _field_kb(path: str, field: str) -> int:
    with contextlib.suppress(OSError), open(path) as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def tree_memory(pids: list[int]) -> tuple[int, int]:
    """(RSS, PSS) in bytes summed over ``pids``, read from /proc (cheap enough to
    sample often: finding the tree is what costs, so callers keep the PID list)."""
    rss = pss = 0
    for p in pids:
        rss += _field_kb(f"/proc/{p}/status", "VmRSS:") * 1024
        pss += _field_kb(f"/proc/{p}/smaps_rollup", "Pss:") * 1024
    return rss, pss


class PeakRss:
    """Samples a process tree every ``interval`` s while used as a context manager."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.idle = 0
        self.peak = 0
        self.idle_pss = 0
        self.peak_pss = 0
        self._pids: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakRss:
        self._pids = tree_pids(self.pid)
        self.idle, self.idle_pss = tree_memory(self._pids)
        self.peak, self.peak_pss = self.idle, self.idle_pss
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        ticks = 0
        while not self._stop.wait(self.interval):
            ticks += 1
            if ticks % 20 == 0:  # a worker may have been replaced
                self._pids = tree_pids(self.pid)
            self._sample()

    def _sample(self) -> None:
        rss, pss = tree_memory(self._pids)
        self.peak = max(self.peak, rss)
        self.peak_pss = max(self.peak_pss, pss)

    def numbers(self) -> dict[str, int]:
        """Idle (when the window opened) and peak, RSS and PSS, in bytes."""
        return {
            "rss_idle": self.idle, "rss_peak": self.peak,
            "pss_idle": self.idle_pss, "pss_peak": self.peak_pss,
        }
