"""Users' Sieve scripts (issue #12): several per account, at most one active (RFC 5804 §1.3). The text is
stored as the user wrote it and compiled again when it changes; ``version`` grows at every change so that
nodes know when the compiled copy they keep is stale. And what scripts remember (vacation replies sent, duplicates seen), and the settings that generate a
script of their own (vacation, forwarding, filters).

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
    # What scripts remember, until when: whom a vacation action answered (RFC 5230 §4.2: one reply per
    # sender and period), which messages the duplicate test saw (RFC 7352). ``key``: a hash of what.
    op.create_table(
        "sieve_seen",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("key", sa.String, primary_key=True),
        sa.Column("until", sa.Float, nullable=False),
    )
    op.create_index("ix_sieve_seen_until", "sieve_seen", ["until"])
    # What users set without writing Sieve (vacation, forwarding, filters), as JSON (services.sieve.rules).
    op.create_table(
        "sieve_rules",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("rules", sa.Text, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sieve_rules")
    op.drop_table("sieve_seen")
    op.drop_table("sieve_scripts")
