"""Peak memory of a server's whole process tree over a timed step.

RSS is summed over the tree as the brief asks (forked workers' shared pages are
counted once per process); PSS splits shared pages, so it is what the tree holds.

Peak RSS is the kernel's own high-water mark (``VmHWM``), reset through
``clear_refs`` when the step starts: caught however brief the peak, where a sampler
can miss anything shorter than its interval (W1's upload on our side lasts about
60 ms).  Summed over the processes of a tree, each one's own peak, it can only
overstate the tree's peak, never understate it.  The kernel keeps no peak PSS, so
a sampler process reads it (and RSS, the fallback where the mark can't be reset)
every ``interval`` seconds; a process of its own, so it never holds the GIL the
benchmark's client needs.  (Whether the sampler sat in the client's process or
not made no difference that runs of W1 could show: bench/RESULTS.md, "Measuring
memory".)
"""

from __future__ import annotations

import contextlib
import subprocess
import sys

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
    """(RSS, PSS) in bytes summed over ``pids``, read from /proc."""
    rss = pss = 0
    for p in pids:
        rss += _field_kb(f"/proc/{p}/status", "VmRSS:") * 1024
        pss += _field_kb(f"/proc/{p}/smaps_rollup", "Pss:") * 1024
    return rss, pss


def reset_high_water_marks(pids: list[int]) -> bool:
    """Start each process's ``VmHWM`` afresh at its current RSS; False if the kernel
    refused for any of them (not ours to write, a kernel before 4.0)."""
    try:
        for p in pids:
            with open(f"/proc/{p}/clear_refs", "w") as f:
                f.write("5")
    except OSError:
        return False
    return True


def high_water_mark(pids: list[int]) -> int:
    """Peak RSS in bytes since the last reset, summed over ``pids`` (each process's
    own peak: at least the tree's peak, never below it)."""
    return sum(_field_kb(f"/proc/{p}/status", "VmHWM:") * 1024 for p in pids)


class PeakRss:
    """Peak RSS and PSS of a process tree while used as a context manager."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.idle = self.peak = self.idle_pss = self.peak_pss = 0
        self._pids: list[int] = []
        self._exact = False
        self._sampler: subprocess.Popen | None = None

    def __enter__(self) -> PeakRss:
        self._pids = tree_pids(self.pid)
        self.idle, self.idle_pss = tree_memory(self._pids)
        self._sampler = subprocess.Popen(
            [sys.executable, "-m", "bench.rss", str(self.interval), str(self.pid)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        if self._sampler.stdout.readline().strip() != "ready":
            self._sampler.kill()
            self._sampler.communicate()
            raise RuntimeError("the memory sampler did not start")
        self._exact = reset_high_water_marks(self._pids)
        return self

    def __exit__(self, *exc) -> None:
        assert self._sampler is not None
        try:
            out = self._sampler.communicate("", timeout=30)[0].split()
        except subprocess.TimeoutExpired:
            self._sampler.kill()
            out = self._sampler.communicate()[0].split()
        sampled_rss, self.peak_pss = (int(out[0]), int(out[1])) if len(out) == 2 else (0, 0)
        pids = tree_pids(self.pid)
        rss, pss = tree_memory(pids)
        self.peak_pss = max(self.peak_pss, pss, self.idle_pss)
        if self._exact and set(pids) == set(self._pids):
            self.peak = high_water_mark(pids)
        else:  # the mark could not be reset, or a worker was replaced meanwhile
            self.peak = max(sampled_rss, rss, self.idle)

    def numbers(self) -> dict[str, int]:
        """Idle (when the window opened) and peak, RSS and PSS, in bytes."""
        return {
            "rss_idle": self.idle, "rss_peak": self.peak,
            "pss_idle": self.idle_pss, "pss_peak": self.peak_pss,
        }


def sample(interval: float, pid: int) -> None:
    """The sampler process: peak (RSS, PSS) of ``pid``'s tree until stdin closes."""
    import select

    pids = tree_pids(pid)
    peak_rss = peak_pss = ticks = 0
    print("ready", flush=True)
    while not select.select([sys.stdin], [], [], interval)[0]:
        ticks += 1
        if ticks % 20 == 0:  # a worker may have been replaced
            pids = tree_pids(pid)
        rss, pss = tree_memory(pids)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
    print(peak_rss, peak_pss, flush=True)


if __name__ == "__main__":
    sample(float(sys.argv[1]), int(sys.argv[2]))
