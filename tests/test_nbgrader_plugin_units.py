"""Small behaviours of the nbgrader plugins that need no server."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange.abc import ExchangeError

from ngshare_gql.nbgrader import ExchangeFetchAssignment, configure
from ngshare_gql.nbgrader.collect import _span
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
    [(6 * 60 + 20, "6 minutes"), (119 * 60 + 20, "119 minutes"), (119 * 60 + 59, "2 hours"),
     (47 * 3600 + 20 * 60, "47 hours"), (47 * 3600 + 40 * 60, "2 days"),
     (9461 * 86400 - 60, "9461 days")],
)
def test_a_misdated_timestamp_is_told_in_the_unit_a_person_would_use(seconds, said):
    assert _span(timedelta(seconds=seconds)) == said
