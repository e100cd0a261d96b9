"""Large mailboxes: SELECT reads UIDs, not rows (partial indexes for unseen, deleted and keyword
rows); expunged rows are kept for the blob grace period so sessions can still fetch them.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# The expressions must stay textually identical to the queries in storage/sqlite/mailboxes.py:
# SQLite uses a partial index only for a WHERE clause that contains its condition verbatim.
UNSEEN = "' ' || flags || ' ' NOT LIKE '% \\Seen %'"
DELETED = "' ' || flags || ' ' LIKE '% \\Deleted %'"
KEYWORDS = "(' ' || flags) GLOB '* [^\\]*'"


def upgrade() -> None:
    op.execute(f"CREATE INDEX ix_messages_unseen ON messages (mailbox_id, uid) WHERE {UNSEEN}")
    op.execute(f"CREATE INDEX ix_messages_deleted ON messages (mailbox_id, uid) WHERE {DELETED}")
    op.execute(f"CREATE INDEX ix_messages_keywords ON messages (mailbox_id, flags) WHERE {KEYWORDS}")
    op.create_table(
        "expunged_rows",
        sa.Column("mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("uid", sa.BigInteger, nullable=False),
        sa.Column("modseq", sa.BigInteger, nullable=False),
        sa.Column("flags", sa.String, nullable=False),
        sa.Column("internal_date", sa.Float, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("blob_id", sa.String, nullable=False),
        sa.Column("prefix", sa.LargeBinary, nullable=False),
        sa.Column("expunged_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("mailbox_id", "uid"),
    )
    op.create_index("ix_expunged_rows_at", "expunged_rows", ["expunged_at"])


def downgrade() -> None:
    op.drop_index("ix_expunged_rows_at", "expunged_rows")
    op.drop_table("expunged_rows")
    op.execute("DROP INDEX ix_messages_keywords")
    op.execute("DROP INDEX ix_messages_deleted")
    op.execute("DROP INDEX ix_messages_unseen")
