"""API tokens of the REST API (issue #11): the SHA-256 of each secret, never the secret; role, the
account of a user token, a domain admin's domains; revoked tokens are kept for the record.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("digest", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("role", sa.String, nullable=False),
        sa.Column("subject", sa.String, nullable=False),
        sa.Column("domains", sa.String, nullable=False),
        sa.Column("label", sa.String, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("expires", sa.Float, nullable=False),
        sa.Column("revoked", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
