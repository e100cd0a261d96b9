"""The audit log of administrative actions (issue #11): append-only; ``domain`` is what a domain admin
may see (indexed with the id, for its pages newest first).

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String, nullable=False),
        sa.Column("role", sa.String, nullable=False),
        sa.Column("ip", sa.String, nullable=False),
        sa.Column("action", sa.String, nullable=False),
        sa.Column("target", sa.String, nullable=False),
        sa.Column("domain", sa.String, nullable=False),
        sa.Column("before", sa.String, nullable=False),
        sa.Column("after", sa.String, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_audit_domain", "audit_log", ["domain", "id"])
    op.create_index("ix_audit_at", "audit_log", ["at"])


def downgrade() -> None:
    op.drop_table("audit_log")
