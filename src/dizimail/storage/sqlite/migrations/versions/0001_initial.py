"""Initial schema: domains, accounts, aliases, mailboxes, message index, blobs, queue.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "domains",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String, nullable=False, unique=True),
        sa.Column("alias_of", sa.Integer, sa.ForeignKey("domains.id", ondelete="CASCADE")),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("domain_id", sa.Integer, sa.ForeignKey("domains.id"), nullable=False),
        sa.Column("local_part", sa.String, nullable=False),
        sa.Column("password_hash", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("quota_bytes", sa.BigInteger, nullable=False),
        sa.Column("used_bytes", sa.BigInteger, nullable=False),
        sa.Column("message_count", sa.Integer, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.UniqueConstraint("domain_id", "local_part"),
    )
    op.create_table(
        "aliases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("domain_id", sa.Integer, sa.ForeignKey("domains.id"), nullable=False),
        sa.Column("local_part", sa.String, nullable=False),
        sa.UniqueConstraint("domain_id", "local_part"),
    )
    op.create_table(
        "alias_targets",
        sa.Column("alias_id", sa.Integer, sa.ForeignKey("aliases.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("target", sa.String, primary_key=True),
    )
    op.create_table(
        "mailboxes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("uidvalidity", sa.BigInteger, nullable=False),
        sa.Column("uidnext", sa.BigInteger, nullable=False),
        sa.Column("highestmodseq", sa.BigInteger, nullable=False),
        sa.Column("special_use", sa.String),
        sa.Column("subscribed", sa.Boolean, nullable=False),
        sa.UniqueConstraint("account_id", "name"),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("uid", sa.BigInteger, nullable=False),
        sa.Column("modseq", sa.BigInteger, nullable=False),
        sa.Column("flags", sa.String, nullable=False),
        sa.Column("internal_date", sa.Float, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("blob_id", sa.String, nullable=False),
        sa.Column("prefix", sa.LargeBinary, nullable=False),
        sa.Column("queue_id", sa.String, nullable=False),
        sa.UniqueConstraint("mailbox_id", "uid"),
    )
    op.create_index("ix_messages_blob", "messages", ["blob_id"])
    op.create_table(
        "blobs",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("refcount", sa.Integer, nullable=False),
    )
    op.create_table(
        "queue",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("blob_id", sa.String, nullable=False),
        sa.Column("sender", sa.String, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("params", sa.String, nullable=False),
        sa.Column("prefix", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "queue_recipients",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("queue_id", sa.String, sa.ForeignKey("queue.id", ondelete="CASCADE"), nullable=False),
        sa.Column("address", sa.String, nullable=False),
        sa.Column("notify", sa.String),
        sa.Column("orcpt", sa.String),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt", sa.Float, nullable=False),
        sa.Column("last_error", sa.String, nullable=False),
        sa.Column("lease_owner", sa.String),
        sa.Column("lease_expiry", sa.Float),
    )
    op.create_index("ix_queue_recipients_due", "queue_recipients", ["status", "next_attempt"])
    op.create_index("ix_queue_recipients_queue", "queue_recipients", ["queue_id"])


def downgrade() -> None:
    for name in ("queue_recipients", "queue", "blobs", "messages", "mailboxes", "alias_targets",
                 "aliases", "accounts", "domains"):
        op.drop_table(name)
