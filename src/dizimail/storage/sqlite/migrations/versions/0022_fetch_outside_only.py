"""A fetch account a user added in webmail's settings (issue #13) may reach the internet only: its host is
resolved and checked before every connection, and the connection goes to the checked address (a name that
later resolves to an inner address, DNS rebinding, is refused). Accounts the operator adds are not marked.

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fetch_accounts") as batch:
        batch.add_column(sa.Column("outside_only", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("fetch_accounts") as batch:
        batch.drop_column("outside_only")
