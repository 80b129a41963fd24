"""How the benchmark sums up repeated runs of a workload."""

from __future__ import annotations

from bench.__main__ import _median


def test_each_part_of_a_transfer_is_the_median_of_its_own():
    runs = [
        {"seconds": 0.18, "upload_post_s": 0.063, "download_s": 0.079, "rss_peak": 5},
        {"seconds": 0.20, "upload_post_s": 0.049, "download_s": 0.108, "rss_peak": 7},
        {"seconds": 0.22, "upload_post_s": 0.050, "download_s": 0.104, "rss_peak": 6},
    ]
    merged = _median(runs)
    assert merged["seconds"] == 0.20
    assert merged["upload_post_s"] == 0.050  # not 0.049, the median run's own
    assert merged["download_s"] == 0.104
    assert merged["rss_peak"] == 7
    assert merged["runs"] == [0.18, 0.2, 0.22]
    assert merged["upload_post_s_runs"] == [0.063, 0.049, 0.05]


def test_a_fraction_of_the_physical_reference_is_better_higher():
    runs = [
        {"seconds": 0.20, "upload_post_s": 0.06, "upload_vs_physical": 0.48},
        {"seconds": 0.21, "upload_post_s": 0.05, "upload_vs_physical": 0.55},
    ]
    merged = _median(runs)
    assert merged["upload_vs_physical"] == 0.55  # of two, the better: the higher
    assert merged["upload_post_s"] == 0.05
    assert merged["upload_vs_physical_runs"] == [0.48, 0.55]


def test_of_two_runs_the_better_and_failures_are_kept():
    runs = [
        {"seconds": 0.30, "upload_post_s": 0.07, "download_s": 0.09, "rss_peak": 5},
        {"failed": "ConnectionError: refused"},
        {"seconds": 0.20, "upload_post_s": 0.08, "download_s": 0.06, "rss_peak": 6},
    ]
    merged = _median(runs)
    assert (merged["seconds"], merged["upload_post_s"], merged["download_s"]) == (0.20, 0.07, 0.06)
    assert merged["failed_runs"] == ["ConnectionError: refused"]


def test_the_upload_target_reads_runs_from_before_the_reference_beside_each_upload():
    from bench.report import OURS, targets

    w1 = {"bytes": 50 * 2**20, "upload_post_s": 0.05}
    old = {"physical": {"sha256_MBps": 1700.0, "loopback_MBps": 4000.0},
           "workloads": {"W1": {OURS: w1}}}
    row = next(r for r in targets(old) if r[0].startswith("W1 upload"))
    assert row[2] == "1000 MB/s is 59% of the run's first (1700 MB/s)" and row[3] is True
    old["workloads"]["W1"][OURS] = {**w1, "upload_vs_physical": 0.45,
                                    "upload_vs_physical_runs": [0.45, 0.4]}
    row = next(r for r in targets(old) if r[0].startswith("W1 upload"))
    assert row[2].startswith("45% (runs 45%, 40%) of the reference measured beside each")
    assert row[3] is False


def test_a_part_missing_from_a_run_is_summed_up_over_the_runs_that_have_it():
    runs = [
        {"seconds": 0.20, "upload_post_s": 0.06, "upload_vs_bare": 0.9},
        {"seconds": 0.21, "upload_post_s": 0.05, "bare_failed": "RuntimeError: no port"},
        {"seconds": 0.22, "upload_post_s": 0.07, "upload_vs_bare": 0.8},
    ]
    merged = _median(runs)  # the median run is the one without it
    assert merged["upload_vs_bare"] == 0.9  # of two, the better: the higher
    assert merged["upload_vs_bare_runs"] == [0.9, 0.8]
    assert merged["upload_post_s"] == 0.06
