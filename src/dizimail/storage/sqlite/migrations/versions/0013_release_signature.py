"""The DKIM signature a quarantined message would have carried to its remote recipients (put back on
release, so released mail leaves signed as it would have without the quarantine); an index for the
automatic whitelist's expiry (the sweeper deletes by ``updated``), and one to remove what the content
filter learnt of a blob when the blob is swept (those rows were kept for ever).

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE quarantine ADD COLUMN signature BLOB NOT NULL DEFAULT x''")
    op.execute("CREATE INDEX ix_awl_updated ON awl (updated)")
    op.execute("CREATE INDEX ix_bayes_learned_blob ON bayes_learned (blob_id)")
    op.execute("DELETE FROM bayes_learned WHERE blob_id NOT IN (SELECT id FROM blobs)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_bayes_learned_blob")
    op.execute("DROP INDEX ix_awl_updated")
    op.execute("ALTER TABLE quarantine DROP COLUMN signature")
