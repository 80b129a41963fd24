"""Small behaviours of the nbgrader plugins that need no server."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange.abc import ExchangeError

from ngshare_gql.nbgrader import ExchangeFetchAssignment, configure
from ngshare_gql.nbgrader.collect import ExchangeCollect, in_words
from ngshare_gql.nbgrader.exchange import (
    PROGRESS_THRESHOLD,
    Exchange,
    empty_folders,
    safe_join,
)


def plugin(**traits) -> Exchange:
    return ExchangeFetchAssignment(coursedir=CourseDirectory(), **traits)


def test_service_url_from_trait_then_environment_then_zero_to_jupyterhub(monkeypatch):
    monkeypatch.delenv("NGSHARE_URL", raising=False)
    assert plugin().service_url == "http://proxy-public/services/ngshare-gql/"
    assert plugin(service_name="grading").service_url == "http://proxy-public/services/grading/"
    monkeypatch.setenv("NGSHARE_URL", "http://hub:8000/services/x")
    assert plugin().service_url == "http://hub:8000/services/x/"
    assert plugin(url="http://elsewhere/").service_url == "http://elsewhere/"


def test_missing_token_is_an_exchange_error_naming_the_service(monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    with pytest.raises(ExchangeError, match="JUPYTERHUB_API_TOKEN is not set.*http://svc/"):
        plugin(url="http://svc/").client  # noqa: B018


def test_big_transfers_log_progress_small_ones_do_not(caplog):
    exchange = plugin()
    exchange.log = logging.getLogger("progress-test")
    assert exchange.progress("uploading", PROGRESS_THRESHOLD - 1) is None
    total = 4 * PROGRESS_THRESHOLD
    report = exchange.progress("downloading", total)
    with caplog.at_level(logging.INFO, logger="progress-test"):
        for done in [*range(0, total, total // 100), total]:
            report(done, total)
    lines = [r.getMessage() for r in caplog.records]
    assert 9 <= len(lines) <= 12
    assert lines[-1].startswith("downloading 41.9 of 41.9 MB (100%")


def test_downloads_never_escape_their_directory(tmp_path):
    root = str(tmp_path)
    assert safe_join(root, "a/b.ipynb") == f"{root}/a/b.ipynb"
    assert safe_join(root, "../evil") is None
    assert safe_join(root, "a/../../evil") is None


def test_only_folders_nothing_else_is_in_are_sent_and_made_inside_the_destination(tmp_path):
    files = ["a.ipynb", "data/x.csv"]
    folders = ["data", "data/raw", "out", "out/plots", "out/plots/png", "deep/a/b"]
    assert empty_folders(folders, files) == ["data/raw", "out/plots/png", "deep/a/b"]
    exchange = plugin()
    exchange.make_folders(str(tmp_path), ["data/raw", "out/plots/png"])
    assert (tmp_path / "data" / "raw").is_dir() and (tmp_path / "out" / "plots" / "png").is_dir()
    for escape in ("../outside", "a/../../outside"):
        with pytest.raises(ExchangeError, match="refusing to write outside"):
            exchange.make_folders(str(tmp_path / "dest"), [escape])
    assert not (tmp_path / "outside").exists()


def test_ignored_folders_are_not_made_but_those_above_them_are():
    exchange = ExchangeFetchAssignment(
        coursedir=CourseDirectory(ignore=["__pycache__", ".ipynb*"])
    )
    carried = ["out/__pycache__", "__pycache__", "data/raw", "a/.ipynb_checkpoints/b"]
    assert exchange.folders_to_make([], carried) == ["out", "data/raw", "a"]


def test_every_files_folder_is_made_whether_or_not_the_file_is_copied():
    exchange = ExchangeFetchAssignment(coursedir=CourseDirectory(ignore=["__pycache__"]))
    files = [{"path": p} for p in ("top.ipynb", "lib/__pycache__/m.pyc", "a/b/c.csv", "a/d.csv")]
    assert exchange.folders_to_make(files, ["out", "a"]) == ["out", "a", "lib", "a/b"]


def test_configure_sets_every_factory_trait():
    from traitlets.config import Config

    c = Config()
    configure(c, url="http://svc/")
    assert c.ExchangeFactory.collect == "ngshare_gql.nbgrader.collect.ExchangeCollect"
    assert len(c.ExchangeFactory) == 8
    assert c.Exchange.url == "http://svc/"


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(6 * 60 + 20, "6 minutes"), (119 * 60 + 20, "119 minutes"), (119 * 60 + 40, "2 hours"),
     (150 * 60, "3 hours"), (210 * 60, "4 hours"), (47 * 3600 + 20 * 60, "47 hours"),
     (47 * 3600 + 40 * 60, "2 days"), (9461 * 86400 - 60, "9461 days")],
)
def test_a_misdated_timestamp_is_told_in_the_unit_a_person_would_use(seconds, said):
    assert in_words(timedelta(seconds=seconds)) == said


RECEIVED = datetime(2026, 11, 27, 8, 0, 0)


@pytest.mark.parametrize(
    ("stamp", "size", "due", "said"),
    [
        # within the clock slack, either way: nothing said
        ("2026-11-27 07:55:00.000000 UTC", 0, None, None),
        ("2026-11-27 08:05:00.000000 UTC", 0, None, None),
        # one second beyond it
        ("2026-11-27 07:54:59.000000 UTC", 0, None, "5 minutes after its timestamp: a slow"),
        ("2026-11-27 08:05:01.000000 UTC", 0, None, "5 minutes before its timestamp: a wrong"),
        # 100 MB may take 800 s more to arrive at 1 Mbit/s, not to be stamped later
        ("2026-11-27 07:42:00.000000 UTC", 100_000_000, None, None),
        ("2026-11-27 07:41:00.000000 UTC", 100_000_000, None, "19 minutes after"),
        ("2026-11-27 08:06:00.000000 UTC", 100_000_000, None, "6 minutes before"),
        # a due date between the two, either way
        ("2026-11-27 07:00:00.000000 UTC", 0, datetime(2026, 11, 27, 7, 30),
         "60 minutes after its timestamp and after the due date (2026-11-27 07:30:00 UTC)"),
        ("2026-11-27 09:00:00.000000 UTC", 0, datetime(2026, 11, 27, 8, 30),
         "60 minutes before its timestamp and before the due date (2026-11-27 08:30:00 UTC)"),
        ("2026-11-27 09:00:00.000000 UTC", 0, datetime(2026, 11, 27, 9, 30),
         "60 minutes before its timestamp: "),
        # a zone abbreviation nbgrader's parse_utc does not know is read as UTC
        ("2026-11-27 10:00:00.000000 CEST", 0, None,
         "stamped 2026-11-27 10:00:00.000000 CEST (read as 2026-11-27 10:00:00 UTC), reached "
         "the service at 2026-11-27 08:00:00 UTC, 2 hours before its timestamp"),
        # what autograde will stop at
        ("next tuesday-ish", 0, None,
         "has a timestamp.txt nbgrader cannot read ('next tuesday-ish'), which autograde"),
        # none, or empty: nbgrader counts it on time (and warns of an empty one itself)
        (None, 0, None, None),
        ("", 0, None, None),
    ],
)
def test_collect_warns_of_a_timestamp_txt_far_from_the_services_receipt(
    tmp_path, caplog, stamp, size, due, said
):
    collect = ExchangeCollect(coursedir=CourseDirectory(assignment_id="ps1"))
    collect.log = logging.getLogger("misdated-test")
    collect.duedate = due
    if stamp is not None:
        (tmp_path / "timestamp.txt").write_text(stamp)
    record = {
        "student": "alice",
        "timestamp": "what the client said, not what nbgrader reads",
        "receivedAt": RECEIVED.replace(tzinfo=timezone.utc).isoformat(),
        "files": [{"size": str(size)}],
    }
    with caplog.at_level(logging.WARNING, logger="misdated-test"):
        collect.warn_if_misdated(record, str(tmp_path))
    lines = [r.getMessage() for r in caplog.records]
    if said is None:
        assert lines == []
    else:
        assert len(lines) == 1 and lines[0].startswith("alice's submission of 'ps1'")
        assert said in lines[0], lines[0]
