"""a course's audit log is read newest first, and from its last deletion, by index

Before, listing a long log sorted all the course's events and read them all to find
its last "course.deleted"; no query reads events by time across courses.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 05:10:00.000000

"""
import contextlib

from alembic import op


# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _outside_a_transaction():
    """On PostgreSQL, indexes are built CONCURRENTLY (which needs no transaction) so the
    service keeps recording events while this runs beside it."""
    if op.get_bind().dialect.name == "postgresql":
        return op.get_context().autocommit_block()
    return contextlib.nullcontext()


def upgrade():
    with _outside_a_transaction():
        op.create_index(
            "ix_event_course_id_at", "event", ["course_id", "at", "id"],
            postgresql_concurrently=True,
        )
        op.create_index(
            "ix_event_course_id_action", "event", ["course_id", "action"],
            postgresql_concurrently=True,
        )
        op.drop_index("ix_event_course_id", table_name="event", postgresql_concurrently=True)
        op.drop_index("ix_event_at", table_name="event", postgresql_concurrently=True)


def downgrade():
    with _outside_a_transaction():
        op.create_index("ix_event_at", "event", ["at"], postgresql_concurrently=True)
        op.create_index("ix_event_course_id", "event", ["course_id"], postgresql_concurrently=True)
        op.drop_index(
            "ix_event_course_id_action", table_name="event", postgresql_concurrently=True
        )
        op.drop_index("ix_event_course_id_at", table_name="event", postgresql_concurrently=True)
