"""releases and submissions carry their empty folders

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 23:45:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    for table in ("assignment", "submission"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("folders", sa.JSON(), server_default="[]", nullable=False)
            )


def downgrade():
    for table in ("assignment", "submission"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("folders")
