"""SQLite only: a database from before migration 0008 keeps working after it.

Mail stored before 0008 has no sort keys, no sort dates and no kept counts: the migration counts
the mailboxes and marks the blobs that have their search document; the keys come at the first
SORT of each mailbox (read from the blobs' headers, then stored)."""

from __future__ import annotations

import time

from dizimail.services.search import MessageSearch
from dizimail.services.selected import SelectedMailbox
from dizimail.storage.fs.blobs import FsBlobStore
from dizimail.storage.sqlite.db import SqliteDatabase
from dizimail.storage.sqlite.meta import SqliteMetaStore
from dizimail.storage.sqlite.search import SqliteSearchIndex

OLD_MAIL = [(b"Subject: Re: later\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\n\r\nb\r\n", "\\Seen"),
            (b"Subject: earlier\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\na\r\n", ""),
            (b"Subject: no date at all\r\n\r\nc\r\n", "\\Deleted")]


async def test_mail_stored_before_0008_gets_counts_and_sort_keys(tmp_path):
    db = SqliteDatabase(tmp_path / "dizimail.db")
    db.upgrade("0007")  # store mail the way 0007 did
    blobs = FsBlobStore(tmp_path / "blobs", tmp_path / "spool")
    with db.write_engine.begin() as conn:
        raw = conn.connection.driver_connection
        raw.execute("INSERT INTO domains (id, name, status, created) VALUES (1, 'example.test', 'active', 0)")
        raw.execute("INSERT INTO accounts (id, domain_id, local_part, password_hash, name, quota_bytes, used_bytes, "
                    "message_count, status, created) VALUES (1, 1, 'a', 'x', '', 0, 0, 3, 'active', 0)")
        raw.execute("INSERT INTO mailboxes (id, account_id, name, uidvalidity, uidnext, highestmodseq, recent_uid) "
                    "VALUES (1, 1, 'INBOX', 1, 4, 4, 4)")
        for uid, (data, flags) in enumerate(OLD_MAIL, 1):
            writer = blobs.writer()
            writer.write(data)
            blob = writer.finish()
            raw.execute("INSERT INTO blobs (id, size, refcount) VALUES (?, ?, 1)", (blob.id, blob.size))
            raw.execute("INSERT INTO messages (mailbox_id, uid, modseq, flags, internal_date, size, blob_id, prefix, "
                        "queue_id) VALUES (1, ?, ?, ?, ?, ?, ?, x'', 'Q')", (uid, uid, flags, time.time() - uid * 86400 * 400,
                                                                            blob.size, blob.id))
    db.upgrade()
    db.start()
    try:
        meta = SqliteMetaStore(db, blobs)
        status = await meta.mailbox_status(1)
        assert (status.messages, status.unseen, status.deleted, status.size) == (
            3, 2, 1, sum(len(data) for data, _ in OLD_MAIL))
        view = SelectedMailbox(meta, await meta.get_mailbox(1, "INBOX"), readonly=True)
        await view.open()
        search = MessageSearch(meta, SqliteSearchIndex(db), blobs)
        assert await search.sort(view, [(False, "DATE")], [1, 2, 3]) == [3, 2, 1]  # no Date: its internal date
        assert await search.sort(view, [(False, "SUBJECT")], [1, 2, 3]) == [2, 1, 3]
        assert await meta.blobs_without_keys(1) == []  # stored: the next SORT reads nothing
        await meta.store_flags(1, [2], "+", ("\\Seen",))
        await meta.expunge(1, [3])
        status = await meta.mailbox_status(1)
        assert (status.messages, status.unseen, status.deleted) == (2, 0, 0)  # kept by the triggers
    finally:
        db.close()


def test_the_head_revision_known_without_alembic_is_alembics_head():
    """SqliteDatabase.upgrade skips Alembic when the database is at head_revision(): it must be Alembic's."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from dizimail.storage.sqlite.db import _MIGRATIONS, head_revision

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [head_revision()]
