"""Outbound delivery and the two networks: queue leases and holds, routes, relay networks, DKIM keys,
run-time settings, fetch accounts (docs/queue.md, docs/architecture.md "Outbound").

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("queue") as batch:
        batch.add_column(sa.Column("held", sa.Boolean, nullable=False, server_default="0"))
        batch.add_column(sa.Column("warned", sa.Boolean, nullable=False, server_default="0"))
        batch.add_column(sa.Column("lease_owner", sa.String, nullable=True))
        batch.add_column(sa.Column("lease_expiry", sa.Float, nullable=False, server_default="0"))
    with op.batch_alter_table("queue_recipients") as batch:
        batch.drop_column("lease_owner")
        batch.drop_column("lease_expiry")
        batch.add_column(sa.Column("updated", sa.Float, nullable=False, server_default="0"))
    op.create_table(
        "routes",
        sa.Column("domain", sa.String, primary_key=True),  # lower-case; "*" is the default route
        sa.Column("kind", sa.String, nullable=False),  # smtp | hold
        sa.Column("host", sa.String, nullable=False),  # smtp: next hop; hold: the holding account
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
    )
    op.create_table(
        "relay_networks",
        sa.Column("network", sa.String, primary_key=True),
        sa.Column("created", sa.Float, nullable=False),
    )
    op.create_table(
        "dkim_keys",
        sa.Column("domain", sa.String, primary_key=True),
        sa.Column("selector", sa.String, nullable=False),
        sa.Column("private_key", sa.LargeBinary, nullable=False),
        sa.Column("public_key", sa.String, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String, primary_key=True),
        sa.Column("value", sa.String, nullable=False),
    )
    op.create_table(
        "fetch_accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True),
        sa.Column("mode", sa.String, nullable=False),  # account | envelope
        sa.Column("protocol", sa.String, nullable=False),  # pop3 | imap
        sa.Column("host", sa.String, nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("security", sa.String, nullable=False),  # none | starttls | tls
        sa.Column("verify", sa.Boolean, nullable=False),
        sa.Column("username", sa.String, nullable=False),
        sa.Column("password", sa.String, nullable=False),
        sa.Column("interval", sa.Float, nullable=False),
        sa.Column("keep", sa.Boolean, nullable=False),
        sa.Column("last_run", sa.Float, nullable=False, server_default="0"),
        sa.Column("last_error", sa.String, nullable=False, server_default=""),
        sa.Column("created", sa.Float, nullable=False),
        sa.UniqueConstraint("host", "port", "username", "account_id"),
    )
    op.create_table(
        "fetch_seen",
        sa.Column("fetch_id", sa.Integer, sa.ForeignKey("fetch_accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("uid", sa.String, primary_key=True),
        sa.Column("created", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for name in ("fetch_seen", "fetch_accounts", "settings", "dkim_keys", "relay_networks", "routes"):
        op.drop_table(name)
    with op.batch_alter_table("queue_recipients") as batch:
        batch.drop_column("updated")
        batch.add_column(sa.Column("lease_owner", sa.String, nullable=True))
        batch.add_column(sa.Column("lease_expiry", sa.Float, nullable=True))
    with op.batch_alter_table("queue") as batch:
        for column in ("lease_expiry", "lease_owner", "warned", "held"):
            batch.drop_column(column)
