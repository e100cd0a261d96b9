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


def test_names_stored_in_a_labels_before_0014_are_kept_in_u_labels(tmp_path):
    """Look-ups now ask for U-labels (util.idn): 0014 respells what an operator stored as A-labels, and
    leaves a row alone when its other spelling is stored too."""
    db = SqliteDatabase(tmp_path / "dizimail.db")
    db.upgrade("0013")
    with db.write_engine.begin() as conn:
        raw = conn.connection.driver_connection
        for name in ("xn--tfr181f.cn", "xn--fiqs8s.cn", "中国.cn", "example.test"):
            raw.execute("INSERT INTO domains (name, status, created) VALUES (?, 'active', 0)", (name,))
        raw.execute("INSERT INTO routes (domain, kind, host, port, created) VALUES ('xn--wnyq9s.cn', 'smtp', 'h', 25, 0)")
        raw.execute("INSERT INTO dkim_keys (domain, selector, private_key, public_key, created) "
                    "VALUES ('xn--tfr181f.cn', 's', x'00', 'p', 0)")
        for scope in ("xn--tfr181f.cn", "boss@xn--tfr181f.cn", "xn--zzzz-.cn"):
            raw.execute("INSERT INTO spam_settings (scope, updated) VALUES (?, 0)", (scope,))
    db.upgrade()
    try:
        raw = db.write_engine.raw_connection()
        def column(sql: str) -> set[str]:
            return {row[0] for row in raw.execute(sql).fetchall()}
        assert column("SELECT name FROM domains") == {"电力.cn", "xn--fiqs8s.cn", "中国.cn", "example.test"}
        assert column("SELECT domain FROM routes") == {"电网.cn"}
        assert column("SELECT domain FROM dkim_keys") == {"电力.cn"}
        assert column("SELECT scope FROM spam_settings") == {"电力.cn", "boss@电力.cn", "xn--zzzz-.cn"}
        raw.close()
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
