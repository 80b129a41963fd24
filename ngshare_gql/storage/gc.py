"""Garbage collection: remove blobs that no release, submission or feedback uses.

Safe while other requests upload and reuse content, on every instance at once,
by the row-locking protocol described on :class:`~.blobs.BlobStore`:

1. select unreferenced Blob rows ``FOR UPDATE SKIP LOCKED`` (rows that a running
   upload or reuse holds are skipped; a row inserted by a transaction that has not
   committed is not seen at all);
2. delete them with the "no file references it" condition checked again by that
   new statement, which on PostgreSQL sees every file committed up to the moment
   our locks were granted (and on SQLite runs under the database's write lock);
3. delete their bytes, then commit.  Until the commit, a request that wants one of
   these blobs waits for our lock; afterwards it finds the row gone and stores the
   content anew (or is told to send it).

Bytes with no index row at all (an upload whose transaction then failed) are found by
listing the backend (:func:`collect_orphans`).  An upload inserts its row before it
writes the bytes, so such bytes are claimed by inserting their row ourselves: if an
upload holds that row, uncommitted, our insert waits and then finds it taken.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from ngshare_gql.extensions import db, insert_ignore
from ngshare_gql.models import Blob, File
from ngshare_gql.storage.blobs import BlobStore

log = logging.getLogger("ngshare_gql.gc")

BATCH = 500


def collect_garbage(
    store: BlobStore,
    candidates: Iterable[str] | None = None,
    *,
    older_than: datetime | None = None,
) -> list[str]:
    """Remove unreferenced blobs (only among ``candidates`` when given, only those
    created before ``older_than`` when given); returns the removed hashes."""
    unreferenced = ~sa.exists().where(File.sha256 == Blob.sha256)
    pending = None if candidates is None else sorted(set(candidates))
    removed: list[str] = []
    while pending is None or pending:
        query = sa.select(Blob.sha256).where(unreferenced)
        if pending is not None:
            query = query.where(Blob.sha256.in_(pending[:BATCH]))
            pending = pending[BATCH:]
        if older_than is not None:
            query = query.where(Blob.created_at < older_than)
        query = query.order_by(Blob.sha256).limit(BATCH).with_for_update(skip_locked=True)
        try:
            found = list(db.session.scalars(query))
            gone = []
            if found:
                gone = list(
                    db.session.scalars(
                        sa.delete(Blob)
                        .where(Blob.sha256.in_(found), unreferenced)
                        .returning(Blob.sha256),
                        execution_options={"synchronize_session": False},
                    )
                )
                store.delete_bytes(gone)
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        removed += gone
        if candidates is None and (len(found) < BATCH or not gone):
            break
    if removed:
        log.info("garbage collection removed %d blobs", len(removed))
    return removed


def collect_orphans(store: BlobStore, *, older_than: datetime | None = None) -> list[str]:
    """Remove bytes the backend holds that have no index row (last modified before
    ``older_than`` when given); returns their hashes."""
    removed: list[str] = []
    batch: list[tuple[str, int]] = []
    for sha256, size, modified in store.iter_stored():
        if older_than is None or modified < older_than:
            batch.append((sha256, size))
        if len(batch) >= BATCH:
            removed += _remove_orphans(store, batch)
            batch = []
    removed += _remove_orphans(store, batch)
    if removed:
        log.info("garbage collection removed %d contents with no index row", len(removed))
    return removed


def _remove_orphans(store: BlobStore, batch: list[tuple[str, int]]) -> list[str]:
    known = set(db.session.scalars(sa.select(Blob.sha256).where(Blob.sha256.in_(dict(batch)))))
    claimed = []
    try:
        for sha256, size in sorted(batch):
            if sha256 in known:
                continue
            claim = insert_ignore(Blob.__table__, {"sha256": sha256, "size": size})
            if db.session.execute(claim.returning(Blob.sha256)).first() is not None:
                claimed.append(sha256)
        store.delete_bytes(claimed)
        db.session.execute(sa.delete(Blob).where(Blob.sha256.in_(claimed)))
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return claimed


def collect_dereferenced(store: BlobStore, hashes: Iterable[str]) -> None:
    """Collect right after an operation dropped references to ``hashes``.

    The operation has committed by then; a failure here is logged, not raised, and
    ``flask blobs gc`` removes whatever was left."""
    hashes = set(hashes)
    if not hashes:
        return
    try:
        collect_garbage(store, hashes)
    except Exception:
        log.exception("collecting %d blobs failed; `flask blobs gc` retries", len(hashes))
