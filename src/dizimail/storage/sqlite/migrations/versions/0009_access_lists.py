"""The operator's block and allow lists (anti-spam layer 1): one row per entry, per list and scope
("" for the whole server, else the domain whose recipients it guards). AUTOINCREMENT ids are never
reused, so (count, sum of ids) changes with every addition and removal: readers reload on that.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("list", sa.String, nullable=False),
        sa.Column("scope", sa.String, nullable=False),
        sa.Column("pattern", sa.String, nullable=False),
        sa.Column("note", sa.String, nullable=False, server_default=""),
        sa.Column("created", sa.Float, nullable=False),
        sa.UniqueConstraint("list", "scope", "pattern"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("access_entries")
