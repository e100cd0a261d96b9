"""Per-domain settings (issue #11): the name and logo its users' login page shows, its limits (storage the
domain's mailboxes may be given in all, how many mailboxes), whether people may ask for a mailbox
themselves; and those requests (``registrations``) until an admin approves or rejects them.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "domain_profiles",
        sa.Column("domain", sa.String, primary_key=True),  # as domains.name (U-labels)
        sa.Column("display_name", sa.String, nullable=False, server_default=""),
        sa.Column("logo", sa.LargeBinary, nullable=True),
        sa.Column("logo_type", sa.String, nullable=False, server_default=""),
        sa.Column("quota_bytes", sa.Integer, nullable=False, server_default="0"),  # 0: no limit
        sa.Column("max_users", sa.Integer, nullable=False, server_default="0"),  # 0: no limit
        sa.Column("self_registration", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "registrations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("domain", sa.String, nullable=False),
        sa.Column("local_part", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("password_hash", sa.String, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("ip", sa.String, nullable=False),
        sa.UniqueConstraint("domain", "local_part"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_registrations_ip", "registrations", ["ip", "created"])


def downgrade() -> None:
    op.drop_table("registrations")
    op.drop_table("domain_profiles")
