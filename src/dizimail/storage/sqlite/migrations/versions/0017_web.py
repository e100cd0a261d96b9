"""The web side (issue #11): web sessions are tokens of kind ``web`` (the cookie carries the secret, only
its SHA-256 is stored, as for API tokens); which accounts may administer (``admin_grants``: role, a domain
admin's domains, an optional TOTP secret sealed with the secret box); mail traffic per day and domain
for the dashboard and the usage report (``traffic``: counted in memory by each node, added here every
few seconds).

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("kind", sa.String, nullable=False, server_default="api"))
    op.create_index("ix_api_tokens_kind", "api_tokens", ["kind", "expires"])
    op.create_table(
        "admin_grants",
        sa.Column("address", sa.String, primary_key=True),
        sa.Column("role", sa.String, nullable=False),
        sa.Column("domains", sa.String, nullable=False),
        sa.Column("totp", sa.String, nullable=False, server_default=""),
        sa.Column("created", sa.Float, nullable=False),
    )
    op.create_table(
        "traffic",
        sa.Column("day", sa.String, nullable=False),  # YYYY-MM-DD, the node's local time
        sa.Column("domain", sa.String, nullable=False),
        sa.Column("kind", sa.String, nullable=False),  # in, out, delivered, bounced
        sa.Column("messages", sa.Integer, nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("day", "domain", "kind"),
    )


def downgrade() -> None:
    op.drop_table("traffic")
    op.drop_table("admin_grants")
    op.drop_index("ix_api_tokens_kind", "api_tokens")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("kind")
