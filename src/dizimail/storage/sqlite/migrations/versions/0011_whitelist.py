"""The automatic whitelist (anti-spam layer 3): per sender address and recipient domain, how many clean
messages came from it (DMARC-authenticated) and whether a local user wrote to it.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE awl (sender TEXT NOT NULL, domain TEXT NOT NULL, clean INTEGER NOT NULL DEFAULT 0, "
               "written INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL, PRIMARY KEY (sender, domain)) WITHOUT ROWID")


def downgrade() -> None:
    op.execute("DROP TABLE awl")
