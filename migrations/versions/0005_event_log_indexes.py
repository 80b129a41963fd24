"""a course's audit log is read newest first, and from its last deletion, by index

Before, listing a long log sorted all the course's events and read them all to find
its last "course.deleted".

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 05:10:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_event_course_id_at", "event", ["course_id", "at", "id"])
    op.create_index("ix_event_course_id_action", "event", ["course_id", "action"])
    op.drop_index("ix_event_course_id", table_name="event")


def downgrade():
    op.create_index("ix_event_course_id", "event", ["course_id"])
    op.drop_index("ix_event_course_id_action", table_name="event")
    op.drop_index("ix_event_course_id_at", table_name="event")
