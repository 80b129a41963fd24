"""files keep the modification time their uploader gave them

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 07:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


# A nullable column without a default: PostgreSQL adds it without rewriting the table,
# SQLite with ALTER TABLE (no rebuild, which would lose 0004's AUTOINCREMENT); both
# drop it in place (SQLite since 3.35).
def upgrade():
    op.add_column("file", sa.Column("modified_at", sa.DateTime(), nullable=True))


def downgrade():
    op.drop_column("file", "modified_at")
