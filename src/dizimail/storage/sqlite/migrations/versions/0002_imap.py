"""IMAP: cached ENVELOPE/BODYSTRUCTURE per blob, expunge log for QRESYNC, \\Recent, UIDVALIDITY counter.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("blobs") as batch:
        batch.add_column(sa.Column("envelope", sa.LargeBinary))
        batch.add_column(sa.Column("bodystructure", sa.LargeBinary))
        batch.add_column(sa.Column("body", sa.LargeBinary))
    with op.batch_alter_table("mailboxes") as batch:
        batch.add_column(sa.Column("recent_uid", sa.BigInteger, nullable=False, server_default="1"))
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("last_uidvalidity", sa.BigInteger, nullable=False, server_default="0"))
    op.create_table(
        "expunged",
        sa.Column("mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("uid", sa.BigInteger, nullable=False),
        sa.Column("modseq", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("mailbox_id", "uid"),
    )
    op.create_index("ix_expunged_modseq", "expunged", ["mailbox_id", "modseq"])
    op.create_index("ix_messages_modseq", "messages", ["mailbox_id", "modseq"])


def downgrade() -> None:
    op.drop_index("ix_messages_modseq", "messages")
    op.drop_table("expunged")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("last_uidvalidity")
    with op.batch_alter_table("mailboxes") as batch:
        batch.drop_column("recent_uid")
    with op.batch_alter_table("blobs") as batch:
        batch.drop_column("body")
        batch.drop_column("bodystructure")
        batch.drop_column("envelope")
