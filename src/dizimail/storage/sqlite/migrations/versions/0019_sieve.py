"""Users' Sieve scripts (issue #12): several per account, at most one active (RFC 5804 §1.3). The text is
stored as the user wrote it and compiled again when it changes; ``version`` grows at every change so that
nodes know when the compiled copy they keep is stale. And whom vacation replies went to.

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sieve_scripts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("active", sa.Integer, nullable=False, server_default="0"),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated", sa.Float, nullable=False),
        sa.UniqueConstraint("account_id", "name"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_sieve_active", "sieve_scripts", ["account_id"], unique=True,
                    sqlite_where=sa.text("active = 1"))
    # Whom a vacation action answered, until when (RFC 5230 §4.2: one reply per sender and period):
    # ``key`` is a hash of the sender and the action's handle.
    op.create_table(
        "vacation_sent",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("key", sa.String, primary_key=True),
        sa.Column("until", sa.Float, nullable=False),
    )
    op.create_index("ix_vacation_until", "vacation_sent", ["until"])


def downgrade() -> None:
    op.drop_table("vacation_sent")
    op.drop_table("sieve_scripts")
