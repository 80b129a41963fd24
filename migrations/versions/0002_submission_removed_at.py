"""submissions cleared from the inbound keep their record and feedback

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 23:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("submission", schema=None) as batch_op:
        batch_op.add_column(sa.Column("removed_at", sa.DateTime(), nullable=True))


def downgrade():
    # Before 0002, removing a submission deleted it with its feedback: do that now for
    # the removed ones, which would otherwise come back as submissions with no files.
    removed = "SELECT id FROM submission WHERE removed_at IS NOT NULL"
    feedback = f"SELECT id FROM feedback WHERE submission_id IN ({removed})"
    op.execute(f"DELETE FROM file WHERE feedback_id IN ({feedback})")
    op.execute(f"DELETE FROM feedback WHERE submission_id IN ({removed})")
    op.execute("DELETE FROM submission WHERE removed_at IS NOT NULL")
    with op.batch_alter_table("submission", schema=None) as batch_op:
        batch_op.drop_column("removed_at")
