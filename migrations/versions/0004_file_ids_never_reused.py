"""SQLite never reuses a deleted file's id, which download URLs name

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 00:45:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The file table as 0001 made it; the rebuild copies it rather than reflecting it,
# since SQLite's reflection loses the CHECK constraint.
ONE_OWNER = (
    "(CASE WHEN assignment_id IS NULL THEN 0 ELSE 1 END)"
    " + (CASE WHEN submission_id IS NULL THEN 0 ELSE 1 END)"
    " + (CASE WHEN feedback_id IS NULL THEN 0 ELSE 1 END) = 1"
)
FILE = sa.Table(
    "file",
    sa.MetaData(),
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("assignment_id", sa.Integer(), nullable=True),
    sa.Column("submission_id", sa.Integer(), nullable=True),
    sa.Column("feedback_id", sa.Integer(), nullable=True),
    sa.Column("path", sa.String(length=1024), nullable=False),
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Column("sha256", sa.String(length=64), nullable=False),
    sa.CheckConstraint(ONE_OWNER, name="ck_file_one_owner"),
    sa.ForeignKeyConstraint(
        ["assignment_id"], ["assignment.id"],
        name="fk_file_assignment_id_assignment", ondelete="CASCADE",
    ),
    sa.ForeignKeyConstraint(
        ["feedback_id"], ["feedback.id"], name="fk_file_feedback_id_feedback", ondelete="CASCADE"
    ),
    sa.ForeignKeyConstraint(
        ["submission_id"], ["submission.id"],
        name="fk_file_submission_id_submission", ondelete="CASCADE",
    ),
    sa.PrimaryKeyConstraint("id", name="pk_file"),
    sa.Index("ix_file_assignment_id", "assignment_id"),
    sa.Index("ix_file_feedback_id", "feedback_id"),
    sa.Index("ix_file_sha256", "sha256"),
    sa.Index("ix_file_submission_id", "submission_id"),
)


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "file",
        copy_from=FILE,
        recreate="always",
        table_kwargs={"sqlite_autoincrement": autoincrement},
    ):
        pass


def upgrade():
    _rebuild(True)


def downgrade():
    _rebuild(False)
