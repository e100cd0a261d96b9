"""Unreferenced blobs are kept for a grace period before they are removed.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("blobs") as batch:
        batch.add_column(sa.Column("zero_since", sa.Float))
    op.create_index("ix_blobs_zero_since", "blobs", ["zero_since"])


def downgrade() -> None:
    op.drop_index("ix_blobs_zero_since", "blobs")
    with op.batch_alter_table("blobs") as batch:
        batch.drop_column("zero_since")
