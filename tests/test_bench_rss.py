"""The benchmark's memory measurement: exact peak RSS, sampled peak PSS."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench import rss as bench_rss
from bench.rss import PeakRss
from tests.servers import REPO

MB = 1024 * 1024

# Holds 200 MB, touched, between "go" and "free" on stdin; says so on stdout.
BURST = """
import sys
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "go":
        block = bytearray(200 * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])
        print("held", flush=True)
    elif line.strip() == "free":
        del block
        print("freed", flush=True)
"""


@pytest.fixture
def burster():
    child = subprocess.Popen(
        [sys.executable, "-c", BURST], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "ready"

    def say(word: str, answer: str) -> None:
        child.stdin.write(word + "\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == answer

    yield child, say
    child.kill()
    child.wait()


@pytest.fixture(autouse=True)
def _from_the_repo(monkeypatch):
    monkeypatch.chdir(REPO)  # the sampler runs as ``python -m bench.rss``


def test_a_peak_between_two_samples_is_caught_exactly(burster):
    child, say = burster
    with PeakRss(child.pid, interval=30.0) as rss:  # no sample during the step
        say("go", "held")
        say("free", "freed")
    assert rss._exact  # the kernel's mark, not a sample
    numbers = rss.numbers()
    assert numbers["rss_peak"] - numbers["rss_idle"] >= 190 * MB
    assert numbers["rss_peak"] - numbers["rss_idle"] < 260 * MB


def test_without_a_resettable_mark_the_samples_give_the_peak(burster, monkeypatch):
    child, say = burster
    monkeypatch.setattr(bench_rss, "reset_high_water_marks", lambda pids: False)
    with PeakRss(child.pid, interval=0.01) as rss:
        say("go", "held")
        subprocess.run([sys.executable, "-c", "import time; time.sleep(0.3)"], check=True)
        say("free", "freed")
    numbers = rss.numbers()
    assert numbers["rss_peak"] - numbers["rss_idle"] >= 190 * MB
    assert numbers["pss_peak"] - numbers["pss_idle"] >= 190 * MB


def test_the_high_water_mark_starts_afresh_at_each_step(burster):
    child, say = burster
    say("go", "held")
    say("free", "freed")  # a peak before the step must not count in it
    with PeakRss(child.pid, interval=30.0) as rss:
        pass
    assert rss._exact
    numbers = rss.numbers()
    assert numbers["rss_peak"] - numbers["rss_idle"] < 20 * MB


def test_a_sampler_that_does_not_start_is_reaped(burster, monkeypatch):
    child, _say = burster
    monkeypatch.setattr(bench_rss.sys, "executable", "/bin/true")
    meter = PeakRss(child.pid)
    with pytest.raises(RuntimeError, match="did not start"):
        meter.__enter__()
    assert meter._sampler.returncode is not None
