"""The database pool keeps a connection per request thread (both databases)."""

from __future__ import annotations

import os
import runpy
import threading
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from ngshare_gql.app import create_app
from ngshare_gql.config import Settings, from_environ
from ngshare_gql.extensions import db
from tests.servers import REPO


def test_the_pool_size_follows_the_threads_unless_set():
    assert from_environ({}).db_pool_size == 8
    assert from_environ({"NGSHARE_THREADS": "12"}).db_pool_size == 12
    assert from_environ({"NGSHARE_THREADS": "12", "NGSHARE_DB_POOL_SIZE": "3"}).db_pool_size == 3


@pytest.mark.parametrize(
    ("name", "value"),
    [("NGSHARE_DB_POOL_SIZE", "0"), ("NGSHARE_DB_POOL_SIZE", "-2"), ("NGSHARE_THREADS", "many")],
)
def test_a_pool_size_that_is_not_a_count_is_refused_by_name(name, value):
    with pytest.raises(ValueError, match=f"{name} must be a whole number of at least 1"):
        from_environ({name: value})


def test_gunicorn_tells_each_worker_its_thread_count(monkeypatch):
    conf = runpy.run_path(os.path.join(REPO, "deploy", "gunicorn.conf.py"))
    worker = SimpleNamespace(cfg=SimpleNamespace(threads=16))
    monkeypatch.delenv("NGSHARE_DB_POOL_SIZE", raising=False)
    conf["post_fork"](None, worker)
    assert os.environ["NGSHARE_DB_POOL_SIZE"] == "16"
    monkeypatch.setenv("NGSHARE_DB_POOL_SIZE", "4")  # an operator's own choice stays
    conf["post_fork"](None, worker)
    assert os.environ["NGSHARE_DB_POOL_SIZE"] == "4"


def test_an_in_memory_sqlite_database_still_works(tmp_path):
    app = create_app(Settings(database_url="sqlite://", auth="dev", blob_dir=str(tmp_path)))
    with app.app_context():
        assert db.session.execute(sa.text("SELECT 1")).scalar() == 1


def test_a_busy_moment_opens_each_connection_once(app, settings):
    """As many requests at once as there are threads, twice: the second time every
    connection is reused.  (With SQLAlchemy's default of 5, three were closed after
    each busy moment and opened again for the next.)"""
    threads = settings.db_pool_size
    with app.app_context():
        engine = db.engine
        engine.dispose()
        opened = []

        def count(*_args) -> None:
            opened.append(1)

        failures: list[BaseException] = []
        sa.event.listen(engine, "connect", count)
        try:
            for _ in range(2):
                together = threading.Barrier(threads)

                def request(together: threading.Barrier = together) -> None:
                    try:
                        with engine.connect() as connection:
                            connection.execute(sa.text("SELECT 1"))
                            together.wait(timeout=10)  # all hold a connection at once
                    except BaseException as exc:  # noqa: BLE001 - asserted below
                        failures.append(exc)

                workers = [threading.Thread(target=request) for _ in range(threads)]
                for worker in workers:
                    worker.start()
                for worker in workers:
                    worker.join()
        finally:
            sa.event.remove(engine, "connect", count)
        assert failures == []
        assert len(opened) == threads
