"""Subscriptions are names, independent of whether the mailbox exists (RFC 3501 §6.3.6, RFC 5258).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String, primary_key=True),
    )
    op.execute("INSERT INTO subscriptions (account_id, name) SELECT account_id, name FROM mailboxes WHERE subscribed")
    with op.batch_alter_table("mailboxes") as batch:
        batch.drop_column("subscribed")


def downgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch:
        batch.add_column(sa.Column("subscribed", sa.Boolean, nullable=False, server_default="0"))
    op.execute("UPDATE mailboxes SET subscribed = 1 WHERE EXISTS (SELECT 1 FROM subscriptions s "
               "WHERE s.account_id = mailboxes.account_id AND s.name = mailboxes.name)")
    op.drop_table("subscriptions")
