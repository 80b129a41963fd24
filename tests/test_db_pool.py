"""The database pool keeps a connection per request thread (both databases)."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from ngshare_gql.config import from_environ
from ngshare_gql.extensions import db


def test_the_pool_size_follows_the_threads_unless_set():
    assert from_environ({}).db_pool_size == 8
    assert from_environ({"NGSHARE_THREADS": "12"}).db_pool_size == 12
    assert from_environ({"NGSHARE_THREADS": "12", "NGSHARE_DB_POOL_SIZE": "3"}).db_pool_size == 3


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

        sa.event.listen(engine, "connect", count)
        try:
            for _ in range(2):
                together = threading.Barrier(threads)

                def request(together: threading.Barrier = together) -> None:
                    with engine.connect() as connection:
                        connection.execute(sa.text("SELECT 1"))
                        together.wait(timeout=10)  # all hold a connection at once

                workers = [threading.Thread(target=request) for _ in range(threads)]
                for worker in workers:
                    worker.start()
                for worker in workers:
                    worker.join()
        finally:
            sa.event.remove(engine, "connect", count)
        assert len(opened) == threads
