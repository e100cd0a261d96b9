"""Mailing lists (issue #12, docs/lists.md): the lists, their members, and the subscriptions and
unsubscriptions waiting for their confirmation by mail. Posts waiting for a moderator are quarantine
entries of kind ``list``. Queue recipients may carry an envelope sender and header lines of their own (a
list's VERP return path and its member's one-click unsubscription link), so that one blob serves every
member.

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lists",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("domain_id", sa.Integer, sa.ForeignKey("domains.id", ondelete="CASCADE"), nullable=False),
        sa.Column("local_part", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False, server_default=""),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("policy", sa.String, nullable=False, server_default="members"),
        sa.Column("senders", sa.Text, nullable=False, server_default="[]"),
        sa.Column("moderators", sa.Text, nullable=False, server_default="[]"),
        sa.Column("subscription", sa.String, nullable=False, server_default="confirm"),
        sa.Column("archive", sa.String, nullable=False, server_default=""),
        sa.Column("bounce_limit", sa.Integer, nullable=False, server_default="3"),
        sa.Column("created", sa.Float, nullable=False),
        sa.UniqueConstraint("domain_id", "local_part"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "list_members",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("list_id", sa.Integer, sa.ForeignKey("lists.id", ondelete="CASCADE"), nullable=False),
        sa.Column("address", sa.String, nullable=False),
        sa.Column("status", sa.String, nullable=False, server_default="active"),
        sa.Column("bounces", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_bounce", sa.Float, nullable=False, server_default="0"),
        sa.Column("added", sa.Float, nullable=False),
        sa.UniqueConstraint("list_id", "address"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "list_pending",
        sa.Column("token", sa.String, primary_key=True),
        sa.Column("list_id", sa.Integer, sa.ForeignKey("lists.id", ondelete="CASCADE"), nullable=False),
        sa.Column("action", sa.String, nullable=False),
        sa.Column("address", sa.String, nullable=False),
        sa.Column("expires", sa.Float, nullable=False),
        sa.Column("extra", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("ix_list_pending_what", "list_pending", ["list_id", "action", "address"])
    with op.batch_alter_table("queue_recipients") as batch:
        batch.add_column(sa.Column("sender", sa.String, nullable=True))
        batch.add_column(sa.Column("prefix", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("queue_recipients") as batch:
        batch.drop_column("prefix")
        batch.drop_column("sender")
    op.drop_table("list_pending")
    op.drop_table("list_members")
    op.drop_table("lists")
