"""The benchmark end to end at tiny sizes, ngshare 0.6.0 included: it keeps working.

No timing is asserted (CI machines are noisy); what is asserted is what the
benchmark claims beyond timing: every workload ran on both services without
errors, files arrived intact, unchanged content was not re-sent, and the report
was written.  ngshare's virtual environment comes from PyPI on first use (about
30 s) and is reused from ``bench/out/ngshare-venv`` afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench.cpu import SIDES
from tests.servers import REPO

OURS, NG = "ngshare-gql", "ngshare 0.6.0"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_tiny_benchmark_runs_both_services(tmp_path):
    out = tmp_path / "out"
    venv = os.path.join(REPO, "bench", "out", "ngshare-venv")
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--out", str(out), "--ngshare-venv", venv],
        cwd=REPO, capture_output=True, text=True, timeout=280,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    sizes, w = results["sizes"], results["workloads"]
    for name in ("W1", "W2", "W3", "W4", "W5"):
        for svc in (OURS, NG):
            result = w[name][svc]
            assert "failed" not in result, (name, svc, result)
            assert result.get("errors", 0) == 0, (name, svc, result)
            assert result["rss_peak"] >= result["rss_idle"] > 0
    for svc in (OURS, NG):
        assert w["W1"][svc]["intact"] and w["W3"][svc]["intact"]
        assert w["W3"][svc]["collected"] == sizes["students"]
        assert w["W4"][svc]["ops"] == sizes["w4_clients"] * sizes["w4_ops"]
    # Unchanged content: ours sends none of the dataset again, ngshare all of it.
    assert w["W5"][OURS]["dataset_bytes_reuploaded"] == 0
    assert w["W5"][NG]["dataset_bytes_reuploaded"] == sizes["students"] * sizes["release_data"]
    assert w["W6"][OURS]["intact"] and NG not in w["W6"]
    assert results["physical"]["sha256_MBps"] > 0 and results["physical"]["loopback_MBps"] > 0
    w1 = w["W1"][OURS]
    assert w1["physical_beside"]["sha256_MBps"] > 0 and w1["physical_beside"]["loopback_MBps"] > 0
    best = max(w1["upload_vs_physical_runs"])
    assert 0 < w1["upload_vs_physical"] == pytest.approx(best, abs=1e-3)
    assert "bare_failed" not in w1 and w1["bare_beside_MBps"] > 0
    assert 0 < w1["upload_vs_bare"] == pytest.approx(max(w1["upload_vs_bare_runs"]), abs=1e-3)
    # Each run's POST and bare transfer was accounted for (a bare one has no server).
    runs = len(w1["upload_vs_physical_runs"])
    assert len(w1["upload_cpu_runs"]) == len(w1["bare_cpu_runs"]) == runs
    sides = {f"{side}_ms" for side in SIDES} | {"switches", "busiest_outside"}
    assert all(set(c) == sides for c in w1["upload_cpu_runs"] + w1["bare_cpu_runs"])
    assert all(c["server_ms"] == 0 for c in w1["bare_cpu_runs"])
    report = (out / "results.md").read_text()
    assert "| W5 |" in report and "| target | goal | measured | met |" in report
    assert "| CPU time during each upload's POST (bench.cpu; " in report


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_tiny_proxy_benchmark_uploads_through_the_hub_and_directly(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "bench.proxy", "--tiny", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=280,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["proxy_MBps"]) == len(results["direct_MBps"]) == 2
    assert results["proxy_median_MBps"] > 0 and results["direct_median_MBps"] > 0
    assert "proxy:" in run.stdout and "direct:" in run.stdout
