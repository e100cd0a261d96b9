"""Webmail's address book and preferences (issue #13): a user's contacts (one address each, with a name,
phone, organisation and note), their groups and who is in each; and the user's webmail preferences (time
zone, signature, senders whose pictures show) as one JSON document, read on every page (docs/webmail.md).

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String, nullable=False, server_default=""),
        sa.Column("email", sa.String, nullable=False),
        sa.Column("phone", sa.String, nullable=False, server_default=""),
        sa.Column("org", sa.String, nullable=False, server_default=""),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("updated", sa.Float, nullable=False),
        sa.UniqueConstraint("account_id", "email"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "contact_groups",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.UniqueConstraint("account_id", "name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "contact_members",
        sa.Column("group_id", sa.Integer, sa.ForeignKey("contact_groups.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_table(
        "user_prefs",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("user_prefs", "contact_members", "contact_groups", "contacts"):
        op.drop_table(table)
