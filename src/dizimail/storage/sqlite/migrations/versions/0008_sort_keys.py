"""SORT and THREAD keys with the blob (RFC 5256), which blobs lack a search document, each message's
sort date, and each mailbox's counts.

Each blob row gets the keys computed once at ingest (base subject, reply mark, sent date and day,
first addresses, display names, Message-ID, References); NULL ``base_subject`` means "not computed"
(blobs stored before this revision: computed on first use). ``indexed`` says whether the blob has
its search document; partial indexes hold only the rows that lack one or the other, so "does this
mailbox have messages without keys / without a document" is a few index probes, not a join over
every message.

``messages.sort_date`` is the sent date of the message's blob, or its internal date when the Date
field did not parse (SORT DATE, RFC 5256 §3), NULL until the blob has keys: with its index, SORT
(REVERSE DATE) of 20,000 messages reads one index instead of joining every message to its blob.

``mailboxes.n_messages``, ``n_bytes``, ``n_unseen`` and ``n_deleted`` are kept by triggers on
``messages``, so every writer (this process, the queue runner's, the command line) keeps them right
and STATUS reads them instead of counting.

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
# The conditions of storage/sqlite/sql.py UNSEEN and DELETED, as 0/1 for one row.
_UNSEEN = "(' ' || {row}.flags || ' ' NOT LIKE '% \\Seen %')"
_DELETED = "(' ' || {row}.flags || ' ' LIKE '% \\Deleted %')"
COUNTS = ("n_messages", "n_bytes", "n_unseen", "n_deleted")
TRIGGERS = {
    "tr_messages_counted_in": (
        "AFTER INSERT ON messages BEGIN UPDATE mailboxes SET n_messages = n_messages + 1, "
        "n_bytes = n_bytes + NEW.size, n_unseen = n_unseen + {new_unseen}, n_deleted = n_deleted + {new_deleted} "
        "WHERE id = NEW.mailbox_id; END"),
    "tr_messages_counted_out": (
        "AFTER DELETE ON messages BEGIN UPDATE mailboxes SET n_messages = n_messages - 1, "
        "n_bytes = n_bytes - OLD.size, n_unseen = n_unseen - {old_unseen}, n_deleted = n_deleted - {old_deleted} "
        "WHERE id = OLD.mailbox_id; END"),
    "tr_messages_flags_counted": (
        "AFTER UPDATE OF flags ON messages BEGIN UPDATE mailboxes SET "
        "n_unseen = n_unseen + {new_unseen} - {old_unseen}, n_deleted = n_deleted + {new_deleted} - {old_deleted} "
        "WHERE id = NEW.mailbox_id; END"),
}
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
    with op.batch_alter_table("messages", recreate="never") as batch:
        batch.add_column(sa.Column("sort_date", sa.Float, nullable=True))
    op.execute("CREATE INDEX ix_messages_date ON messages (mailbox_id, sort_date, uid DESC)")
    with op.batch_alter_table("mailboxes", recreate="never") as batch:
        for name in COUNTS:
            batch.add_column(sa.Column(name, sa.BigInteger, nullable=False, server_default="0"))
    op.execute(f"UPDATE mailboxes SET n_messages = (SELECT count(*) FROM messages m WHERE m.mailbox_id = mailboxes.id), "
               f"n_bytes = (SELECT coalesce(sum(size), 0) FROM messages m WHERE m.mailbox_id = mailboxes.id), "
               f"n_unseen = (SELECT count(*) FROM messages m WHERE m.mailbox_id = mailboxes.id AND "
               f"{_UNSEEN.format(row='m')}), n_deleted = (SELECT count(*) FROM messages m WHERE "
               f"m.mailbox_id = mailboxes.id AND {_DELETED.format(row='m')})")
    terms = {"new_unseen": _UNSEEN.format(row="NEW"), "new_deleted": _DELETED.format(row="NEW"),
             "old_unseen": _UNSEEN.format(row="OLD"), "old_deleted": _DELETED.format(row="OLD")}
    for name, body in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body.format(**terms)}")


def downgrade() -> None:
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name}")
    with op.batch_alter_table("mailboxes") as batch:
        for name in reversed(COUNTS):
            batch.drop_column(name)
    op.execute("DROP INDEX ix_messages_date")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("sort_date")
    op.execute("DROP INDEX ix_blobs_unindexed")
    op.execute("DROP INDEX ix_blobs_no_keys")
    with op.batch_alter_table("blobs") as batch:
        batch.drop_column("indexed")
        for name, _kind in reversed(_COLUMNS):
            batch.drop_column(name)
