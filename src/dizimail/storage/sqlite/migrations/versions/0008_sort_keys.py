"""SORT and THREAD keys with the blob (RFC 5256), and which blobs lack a search document.

Each blob row gets the keys computed once at ingest (base subject, reply mark, sent date and day,
first addresses, display names, Message-ID, References); NULL ``base_subject`` means "not computed"
(blobs stored before this revision: computed on first use). ``indexed`` says whether the blob has
its search document; partial indexes hold only the rows that lack one or the other, so "does this
mailbox have messages without keys / without a document" is a few index probes, not a join over
every message.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# The conditions must stay textually identical to the queries in storage/sqlite (partial indexes).
NO_KEYS = "base_subject IS NULL"
UNINDEXED = "indexed = 0"
_COLUMNS = (("base_subject", sa.String), ("reply", sa.Integer), ("sent", sa.Float), ("sent_day", sa.Integer),
            ("sort_from", sa.String), ("sort_to", sa.String), ("sort_cc", sa.String), ("display_from", sa.String),
            ("display_to", sa.String), ("message_id", sa.String), ("refs", sa.String))


def upgrade() -> None:
    with op.batch_alter_table("blobs", recreate="never") as batch:
        for name, kind in _COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
        batch.add_column(sa.Column("indexed", sa.Integer, nullable=False, server_default="0"))
    op.execute("UPDATE blobs SET indexed = 1 WHERE id IN (SELECT blob_id FROM search_docs)")
    op.execute(f"CREATE INDEX ix_blobs_no_keys ON blobs (id) WHERE {NO_KEYS}")
    op.execute(f"CREATE INDEX ix_blobs_unindexed ON blobs (id) WHERE {UNINDEXED}")


def downgrade() -> None:
    op.execute("DROP INDEX ix_blobs_unindexed")
    op.execute("DROP INDEX ix_blobs_no_keys")
    with op.batch_alter_table("blobs") as batch:
        batch.drop_column("indexed")
        for name, _kind in reversed(_COLUMNS):
            batch.drop_column(name)
