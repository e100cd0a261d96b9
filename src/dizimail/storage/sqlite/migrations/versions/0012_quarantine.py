"""Quarantine (issue #10): messages held for a human instead of delivered, each with its envelope, why,
and what every check found; each row holds one reference to its blob. Spam settings: per-domain and
per-user thresholds and personal models (NULL: inherited).

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE quarantine (id INTEGER PRIMARY KEY, queue_id VARCHAR NOT NULL, blob_id VARCHAR NOT NULL, "
               "size BIGINT NOT NULL, sender VARCHAR NOT NULL, recipients VARCHAR NOT NULL, kind VARCHAR NOT NULL, "
               "reason VARCHAR NOT NULL, score FLOAT NOT NULL, findings VARCHAR NOT NULL, prefix BLOB NOT NULL, "
               "subject VARCHAR NOT NULL, from_addr VARCHAR NOT NULL, created FLOAT NOT NULL, "
               "expires FLOAT NOT NULL)")
    op.execute("CREATE INDEX ix_quarantine_expires ON quarantine (expires)")
    op.execute("CREATE TABLE spam_settings (scope VARCHAR NOT NULL PRIMARY KEY, tag_at FLOAT, junk_at FLOAT, "
               "reject_at FLOAT, personal INTEGER, updated FLOAT NOT NULL) WITHOUT ROWID")


def downgrade() -> None:
    op.execute("DROP TABLE spam_settings")
    op.execute("DROP TABLE quarantine")
