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
    with op.batch_alter_table("submission", schema=None) as batch_op:
        batch_op.drop_column("removed_at")
