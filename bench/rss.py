"""Peak memory of a server's whole process tree, sampled in the background.

RSS is summed over the tree as the brief asks (forked workers' shared pages are
counted once per process); PSS splits shared pages, so it is what the tree holds.
"""

from __future__ import annotations

import contextlib
import threading

import psutil

MB = 1024 * 1024


def tree_rss(pid: int) -> int:
    """Bytes resident in ``pid`` and all its descendants (gunicorn master + workers)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def tree_pss(pid: int) -> int:
    """Proportional set size of the tree: shared pages (forked workers) counted once."""
    try:
        root = psutil.Process(pid)
        pids = [pid, *(c.pid for c in root.children(recursive=True))]
    except psutil.Error:
        return 0
    total = 0
    for p in pids:
        with contextlib.suppress(OSError), open(f"/proc/{p}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
    return total


class PeakRss:
    """Samples a process tree every ``interval`` s while used as a context manager."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.idle = 0
        self.peak = 0
        self.idle_pss = 0
        self.peak_pss = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakRss:
        self.idle = self.peak = tree_rss(self.pid)
        self.idle_pss = self.peak_pss = tree_pss(self.pid)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        self.peak = max(self.peak, tree_rss(self.pid))
        self.peak_pss = max(self.peak_pss, tree_pss(self.pid))

    def numbers(self) -> dict[str, int]:
        """Idle (when the window opened) and peak, RSS and PSS, in bytes."""
        return {
            "rss_idle": self.idle, "rss_peak": self.peak,
            "pss_idle": self.idle_pss, "pss_peak": self.peak_pss,
        }
