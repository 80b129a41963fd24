"""The benchmark's measures of this machine: the bare upload beside W1's.

Rates are not asserted (machines are noisy); that the bytes really travel, arrive
whole and leave nothing behind is."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from bench import physical
from bench.report import OURS, targets


@pytest.fixture()
def source(tmp_path):
    path = tmp_path / "source.bin"
    content = os.urandom(3 * physical.MB + 12345)  # not a whole number of reads
    path.write_bytes(content)
    return str(path), hashlib.sha256(content).hexdigest()


def test_a_bare_upload_arrives_whole_and_leaves_no_staging_file(source, tmp_path):
    path, sha256 = source
    staging = tmp_path / "staging"
    staging.mkdir()
    rate = physical.bare_upload(path, sha256, str(staging))
    assert rate > 0
    assert list(staging.iterdir()) == []


def test_a_bare_upload_that_arrives_otherwise_is_an_error(source, tmp_path):
    path, sha256 = source
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(RuntimeError, match="arrived as " + sha256):
        physical.bare_upload(path, wrong, str(tmp_path))


def test_a_file_shorter_than_announced_ends_the_bare_upload_at_once(source, tmp_path, monkeypatch):
    path, sha256 = source
    real = os.path.getsize(path)
    monkeypatch.setattr(physical.os.path, "getsize", lambda _p: real + physical.MB)
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="changed size"):
        physical.bare_upload(path, sha256, str(tmp_path))
    assert time.monotonic() - t0 < 10
    assert [p.name for p in tmp_path.iterdir()] == ["source.bin"]  # no staging file left


def test_a_receiver_that_fails_is_quoted(source, tmp_path):
    path, sha256 = source
    with pytest.raises(RuntimeError, match=r"arrived as nothing \(the receiver: .*Error"):
        physical.bare_upload(path, sha256, str(tmp_path / "no such folder"))


def test_an_empty_file_is_a_bare_upload_too(tmp_path):
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    assert physical.bare_upload(str(path), hashlib.sha256().hexdigest(), str(tmp_path)) >= 0


def test_the_report_sets_the_upload_beside_the_bare_one_without_a_target():
    w1 = {"bytes": 50 * 2**20, "upload_post_s": 0.05, "upload_vs_physical": 0.59,
          "upload_vs_physical_runs": [0.59, 0.52], "upload_vs_bare": 0.9,
          "upload_vs_bare_runs": [0.9, 0.85]}
    results = {"physical": {"sha256_MBps": 1700.0, "loopback_MBps": 4000.0},
               "workloads": {"W1": {OURS: w1}}}
    row = next(r for r in targets(results) if "bare" in r[0])
    assert row[1] == "-" and row[3] is None
    assert row[2].startswith("90% (runs 90%, 85%) of the same file sent bare")


def test_a_bare_transfer_that_failed_is_said_so_in_place_of_the_ratio():
    w1 = {"bytes": 50 * 2**20, "upload_post_s": 0.05, "upload_vs_physical": 0.59,
          "upload_vs_physical_runs": [0.59, 0.52], "bare_failed": "ValueError: no port"}
    results = {"physical": {"sha256_MBps": 1700.0, "loopback_MBps": 4000.0},
               "workloads": {"W1": {OURS: w1}}}
    row = next(r for r in targets(results) if "bare" in r[0])
    assert row[2] == "not measured: ValueError: no port" and row[3] is None
