"""Mailbox operations of SqliteMetaStore: folders, flags, MODSEQ, expunge log, copy/move.

Every change takes a new MODSEQ from the mailbox's HIGHESTMODSEQ counter (RFC 7162 §3.1:
one value per command), and expunges are logged with theirs so that sessions (and QRESYNC
clients) learn what vanished since the MODSEQ they know.

SELECT reads a mailbox's UIDs, never its rows: the first unseen message, the \\Deleted ones and
the keywords in use come from partial indexes (migration 0007) that hold only the rows that
matter, and sessions read rows a batch at a time for the command in progress.
"""

from __future__ import annotations

import sqlite3
import time
from array import array
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection

from dizimail.interfaces.blob import BlobStore
from dizimail.model.errors import Conflict, NotFound, PreconditionFailed
from dizimail.model.types import (
    BlobMeta,
    FlagChange,
    MailboxChanges,
    MailboxInfo,
    MailboxSnapshot,
    MailboxStatus,
    MessageEntry,
)
from dizimail.storage.sqlite.db import SqliteDatabase
from dizimail.storage.sqlite.keys import write_keys
from dizimail.storage.sqlite.search import drop_documents
from dizimail.storage.sqlite.sql import DELETED as _DELETED
from dizimail.storage.sqlite.sql import INLINE_ROWS, SQL_VERSION, MailboxCache, uid_version
from dizimail.storage.sqlite.sql import KEYWORDS as _KEYWORDS
from dizimail.storage.sqlite.sql import UNSEEN as _UNSEEN
from dizimail.storage.sqlite.sql import raw as _raw

_BOX_COLS = ("m.id, m.account_id, m.name, m.uidvalidity, m.uidnext, m.highestmodseq, m.special_use, "
             "s.name IS NOT NULL")
_BOX_FROM = "FROM mailboxes m LEFT JOIN subscriptions s ON s.account_id = m.account_id AND s.name = m.name"
_MSG_COLS = "id, mailbox_id, uid, modseq, flags, internal_date, size, blob_id, prefix"
SQL_FIRST_UNSEEN = f"SELECT min(uid) FROM messages WHERE mailbox_id = ?1 AND {_UNSEEN}"
SQL_DELETED_UIDS = f"SELECT uid FROM messages WHERE mailbox_id = ?1 AND {_DELETED} ORDER BY uid"
_STATUS_COLS = "uidnext, uidvalidity, highestmodseq, recent_uid, n_messages, n_bytes, n_unseen, n_deleted"
_SQL_STATUS = f"SELECT {_STATUS_COLS} FROM mailboxes WHERE id = ?"
_SQL_FIND_STATUS = (f"SELECT {_BOX_COLS}, " + ", ".join(f"m.{c}" for c in _STATUS_COLS.split(", "))
                    + f" {_BOX_FROM} WHERE m.account_id = ? AND m.name = ?")
# Each distinct flag string with a keyword, one index probe apiece (a skip scan: few strings, many rows).
SQL_KEYWORD_FLAGS = (f"WITH RECURSIVE k(f) AS (SELECT min(flags) FROM messages WHERE mailbox_id = ?1 AND {_KEYWORDS} "
                     f"UNION ALL SELECT (SELECT min(flags) FROM messages WHERE mailbox_id = ?1 AND {_KEYWORDS} "
                     f"AND flags > k.f) FROM k WHERE k.f IS NOT NULL) SELECT f FROM k WHERE f IS NOT NULL")
_GONE_COLS = "0, mailbox_id, uid, modseq, flags, internal_date, size, blob_id, prefix"


def _box(r: Any) -> MailboxInfo:
    return MailboxInfo(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]))


def _counts(r: Any) -> MailboxStatus:
    """The columns of _SQL_STATUS; RECENT is the caller's to count."""
    return MailboxStatus(messages=r[4], unseen=r[6], recent=0, deleted=r[7], size=r[5], uidnext=r[0],
                         uidvalidity=r[1], highestmodseq=r[2], recent_from=r[3])


def _entry(r: Any) -> MessageEntry:
    return MessageEntry(r[0], r[1], r[2], r[3], tuple(r[4].split()), r[5], r[6], r[7], r[8])


def _bump(raw: sqlite3.Connection, mailbox_id: int) -> int:
    """Allocate the next MODSEQ of a mailbox (inside the caller's transaction)."""
    raw.execute("UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ?", (mailbox_id,))
    return int(raw.execute("SELECT highestmodseq FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone()[0])


def release_blobs(conn: Connection, blob_ids: list[str]) -> None:
    """Drop one reference per listed id. A blob that lost its last one is only marked: the sweeper
    removes it after a grace period, so a session that still shows the message can read it, and
    identical content arriving meanwhile simply takes the blob back."""
    raw = _raw(conn)
    counts: dict[str, int] = {}
    for b in blob_ids:
        counts[b] = counts.get(b, 0) + 1
    raw.executemany("UPDATE blobs SET refcount = refcount - ?, zero_since = CASE WHEN refcount - ? <= 0 "
                    "THEN ? ELSE NULL END WHERE id = ?", [(n, n, time.time(), b) for b, n in counts.items()])


def _expunge_rows(raw: sqlite3.Connection, mailbox_id: int, rows: list[Any], keep: bool = True) -> list[str]:
    """Remove index rows (id, uid, size, blob_id), log them, release quota; returns blob ids to release.

    ``keep``: the rows stay readable in ``expunged_rows`` for the blob grace period, for sessions
    that have yet to announce the expunge (``message_rows``)."""
    if not rows:
        return []
    modseq = _bump(raw, mailbox_id)
    if keep:
        now = time.time()
        raw.executemany("INSERT OR REPLACE INTO expunged_rows (mailbox_id, uid, modseq, flags, internal_date, size, "
                        "blob_id, prefix, expunged_at) SELECT mailbox_id, uid, modseq, flags, internal_date, size, "
                        "blob_id, prefix, ? FROM messages WHERE id = ?", [(now, r[0]) for r in rows])
    raw.executemany("DELETE FROM messages WHERE id = ?", [(r[0],) for r in rows])
    raw.executemany("INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)",
                    [(mailbox_id, r[1], modseq) for r in rows])
    raw.execute("UPDATE accounts SET used_bytes = max(0, used_bytes - ?), message_count = max(0, message_count - ?) "
                "WHERE id = (SELECT account_id FROM mailboxes WHERE id = ?)",
                (sum(r[2] for r in rows), len(rows), mailbox_id))
    return [r[3] for r in rows]


class RowCache:
    """Message rows this process has read, per mailbox, kept right by MODSEQ (RFC 7162 §3.1).

    A client lists the same page of a large mailbox again and again (a webmail at every visit,
    with a new connection each time), and reading 50 scattered rows cost a quarter of such a FETCH.
    A row changes only with its flags, and every flag change gives it a MODSEQ above the
    mailbox's HIGHESTMODSEQ as it was: before rows are served, the rows changed since the
    HIGHESTMODSEQ the kept ones were read at are read again (by any process: the version comes
    from the database). UIDs are never reused within a UIDVALIDITY, so a kept row of an expunged
    message is still that message's row (sessions that have yet to announce the expunge read it).
    Used on the event loop's connection only; bounded by rows held, the least recently used
    mailboxes go first."""

    REFRESH_MAX = 500  # changed rows read to bring a mailbox's rows up to date; more: start again

    def __init__(self, max_rows: int = 50_000) -> None:
        self.max_rows = max_rows
        self._boxes: OrderedDict[int, tuple[int, int, dict[int, MessageEntry]]] = OrderedDict()
        self._held = 0

    def read(self, raw: sqlite3.Connection, mailbox_id: int, uids: Sequence[int]) -> list[MessageEntry]:
        box = raw.execute("SELECT highestmodseq, uidvalidity FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone()
        if box is None:  # deleted meanwhile: only kept rows of expunged messages remain
            self._drop(mailbox_id)
            return _message_rows(raw, mailbox_id, uids)
        modseq, uidvalidity = box
        kept = self._boxes.get(mailbox_id)
        if kept is not None and kept[1] != uidvalidity:
            self._drop(mailbox_id)
            kept = None
        if kept is not None and kept[0] != modseq:
            entries = kept[2]
            changed = raw.execute(f"SELECT {_MSG_COLS} FROM messages WHERE mailbox_id = ? AND modseq > ? LIMIT ?",
                                  (mailbox_id, kept[0], self.REFRESH_MAX + 1)).fetchall()
            if len(changed) > self.REFRESH_MAX:
                self._drop(mailbox_id)
                kept = None
            else:
                for r in changed:
                    if r[2] in entries:
                        entries[r[2]] = _entry(r)
                kept = self._boxes[mailbox_id] = (modseq, uidvalidity, entries)
        if kept is None:
            kept = self._boxes[mailbox_id] = (modseq, uidvalidity, {})
        self._boxes.move_to_end(mailbox_id)
        entries = kept[2]
        missing = [u for u in uids if u not in entries]
        if not missing:
            return [entries[u] for u in uids]
        found = _message_rows(raw, mailbox_id, missing)  # read after the version: at least as new
        before = len(entries)
        for e in found:
            if e.id:  # not a kept row of an expunged message (those live only briefly)
                entries[e.uid] = e
        self._held += len(entries) - before
        if len(missing) == len(uids):
            out = found
        else:
            gone = {e.uid: e for e in found if not e.id}
            out = [row for u in uids if (row := entries.get(u) or gone.get(u)) is not None]
        while self._held > self.max_rows and self._boxes:
            self._drop(next(iter(self._boxes)))
        return out

    def _drop(self, mailbox_id: int) -> None:
        kept = self._boxes.pop(mailbox_id, None)
        if kept is not None:
            self._held -= len(kept[2])


class SqliteMailboxOps:
    db: SqliteDatabase
    blobs: BlobStore
    cache: MailboxCache
    rows: RowCache
    _write: Callable[..., Awaitable[Any]]

    async def list_mailboxes(self, account_id: int) -> list[MailboxInfo]:
        rows = self.db.quick().execute(f"SELECT {_BOX_COLS} {_BOX_FROM} WHERE m.account_id = ? ORDER BY m.name",
                                       (account_id,)).fetchall()
        return [_box(r) for r in rows]

    async def get_mailbox(self, account_id: int, name: str) -> MailboxInfo | None:
        r = self.db.quick().execute(f"SELECT {_BOX_COLS} {_BOX_FROM} WHERE m.account_id = ? AND m.name = ?",
                                    (account_id, name)).fetchone()
        return None if r is None else _box(r)

    async def create_mailbox(self, account_id: int, name: str, special_use: str | None = None) -> MailboxInfo:
        def job(conn: Connection) -> MailboxInfo:
            raw = _raw(conn)
            if raw.execute("SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?", (account_id, name)).fetchone():
                raise Conflict("mailbox_exists", name)
            last = raw.execute("SELECT last_uidvalidity FROM accounts WHERE id = ?", (account_id,)).fetchone()
            if last is None:
                raise NotFound("unknown_user", str(account_id))
            # UIDVALIDITY must never repeat for a name, even after delete + create in the same second
            uidvalidity = max(int(time.time()), int(last[0]) + 1)
            raw.execute("UPDATE accounts SET last_uidvalidity = ? WHERE id = ?", (uidvalidity, account_id))
            cur = raw.execute("INSERT INTO mailboxes (account_id, name, uidvalidity, uidnext, highestmodseq, "
                              "special_use, recent_uid) VALUES (?, ?, ?, 1, 1, ?, 1)",
                              (account_id, name, uidvalidity, special_use))
            # A new mailbox is not subscribed: SUBSCRIBE is the client's decision (RFC 3501 §6.3.6)
            return MailboxInfo(int(cur.lastrowid or 0), account_id, name, uidvalidity, 1, 1, special_use, False)
        return await self._write(job)  # type: ignore[no-any-return]

    async def delete_mailbox(self, account_id: int, name: str) -> None:
        def job(conn: Connection) -> None:
            raw = _raw(conn)
            row = raw.execute("SELECT id FROM mailboxes WHERE account_id = ? AND name = ?",
                              (account_id, name)).fetchone()
            if row is None:
                raise NotFound("unknown_mailbox", name)
            rows = raw.execute("SELECT id, uid, size, blob_id FROM messages WHERE mailbox_id = ?", (row[0],)).fetchall()
            blob_ids = _expunge_rows(raw, row[0], rows, keep=False)
            raw.execute("DELETE FROM mailboxes WHERE id = ?", (row[0],))
            release_blobs(conn, blob_ids)
        await self._write(job)

    async def rename_mailbox(self, account_id: int, old: str, new: str, delimiter: str = "/") -> None:
        """Rename a mailbox and its children (RFC 3501 §6.3.5). INBOX is special: its messages move
        to the new name and INBOX stays, empty."""
        def job(conn: Connection) -> None:
            raw = _raw(conn)
            if raw.execute("SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?", (account_id, new)).fetchone():
                raise Conflict("mailbox_exists", new)
            row = raw.execute("SELECT id FROM mailboxes WHERE account_id = ? AND name = ?",
                              (account_id, old)).fetchone()
            if row is None:
                raise NotFound("unknown_mailbox", old)
            if old == "INBOX":
                raise Conflict("rename_inbox_unsupported", old)
            children = raw.execute("SELECT id, name FROM mailboxes WHERE account_id = ? AND substr(name, 1, ?) = ?",
                                   (account_id, len(old) + 1, old + delimiter)).fetchall()
            raw.execute("UPDATE mailboxes SET name = ? WHERE id = ?", (new, row[0]))
            for child_id, child_name in children:
                raw.execute("UPDATE mailboxes SET name = ? WHERE id = ?", (new + child_name[len(old):], child_id))
            for sub_name in [old] + [c[1] for c in children]:  # subscriptions follow the rename
                raw.execute("UPDATE OR IGNORE subscriptions SET name = ? WHERE account_id = ? AND name = ?",
                            (new + sub_name[len(old):], account_id, sub_name))
        await self._write(job)

    async def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None:
        """Subscriptions are names: a name may be subscribed whether or not the mailbox exists."""
        def job(conn: Connection) -> None:
            if subscribed:
                _raw(conn).execute("INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?, ?)",
                                   (account_id, name))
            else:
                _raw(conn).execute("DELETE FROM subscriptions WHERE account_id = ? AND name = ?", (account_id, name))
        await self._write(job)

    async def list_subscriptions(self, account_id: int) -> list[str]:
        return [r[0] for r in self.db.quick().execute(
            "SELECT name FROM subscriptions WHERE account_id = ? ORDER BY name", (account_id,))]

    async def mailbox_status(self, mailbox_id: int) -> MailboxStatus:
        """STATUS counters: the counts kept in the mailbox row by triggers on messages (migration 0008:
        every writer keeps them right, and nothing is counted now) and, when some messages are still
        unclaimed, the \\Recent ones counted on the UID index between the \\Recent mark and the row's
        uidnext (off the event loop when that range is large)."""
        box = self.db.quick().execute(_SQL_STATUS, (mailbox_id,)).fetchone()
        if box is None:
            raise NotFound("unknown_mailbox", str(mailbox_id))
        return await self._status(mailbox_id, box)

    async def find_status(self, account_id: int, name: str) -> tuple[MailboxInfo, MailboxStatus] | None:
        """The mailbox and its STATUS counters in one statement (STATUS is sent for every folder
        a client lists, and again on a timer)."""
        r = self.db.quick().execute(_SQL_FIND_STATUS, (account_id, name)).fetchone()
        return None if r is None else (_box(r), await self._status(r[0], r[8:]))

    async def _status(self, mailbox_id: int, box: Any) -> MailboxStatus:
        """``box``: the columns of _SQL_STATUS."""
        uidnext, recent_from = box[0], box[3]
        recent = 0
        if recent_from < uidnext:
            def count(raw: sqlite3.Connection) -> int:
                return int(raw.execute("SELECT count(*) FROM messages WHERE mailbox_id = ? AND uid >= ? AND uid < ?",
                                       (mailbox_id, recent_from, uidnext)).fetchone()[0])
            if uidnext - recent_from > INLINE_ROWS:
                recent = await self.db.read(lambda conn: count(_raw(conn)))
            else:
                recent = count(self.db.quick())
        return replace(_counts(box), recent=recent) if recent else _counts(box)

    async def take_recent(self, mailbox_id: int) -> tuple[int, int]:
        """UIDs ``first <= uid < end`` are \\Recent for the caller; later sessions see them as not recent."""
        row = self.db.quick().execute("SELECT recent_uid, uidnext FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone()
        if row is None or row[0] >= row[1]:  # nothing new to claim: no write transaction needed
            return (int(row[1]), int(row[1])) if row else (1, 1)

        def job(conn: Connection) -> tuple[int, int]:
            raw = _raw(conn)
            first, uidnext = raw.execute("SELECT recent_uid, uidnext FROM mailboxes WHERE id = ?",
                                         (mailbox_id,)).fetchone()
            raw.execute("UPDATE mailboxes SET recent_uid = ? WHERE id = ?", (uidnext, mailbox_id))
            return int(first), int(uidnext)
        return await self._write(job)  # type: ignore[no-any-return]

    async def snapshot_mailbox(self, mailbox_id: int) -> MailboxSnapshot:
        """One read transaction; the UIDs come from the cache when the mailbox's set of messages is
        the one cached (flag changes keep it), so SELECT of a large mailbox then reads no UID."""
        version = self.db.quick().execute(SQL_VERSION, (mailbox_id,)).fetchone()
        cached = None if version is None else self.cache.get(("uids", mailbox_id), uid_version(version))

        def read(raw: sqlite3.Connection) -> tuple[MailboxSnapshot, tuple[Any, ...]]:
            raw.execute("BEGIN")  # one snapshot: the counters and the UIDs agree
            try:
                now = raw.execute(SQL_VERSION, (mailbox_id,)).fetchone()
                if now is None:
                    raise NotFound("unknown_mailbox", str(mailbox_id))
                if cached is not None and uid_version(now) == uid_version(version):
                    uids = cached
                else:
                    uids = array("I", map(itemgetter(0), raw.execute(  # 4 bytes a message, no row objects
                        "SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid", (mailbox_id,))))
                first_unseen = raw.execute(SQL_FIRST_UNSEEN, (mailbox_id,)).fetchone()[0]
                counts = _counts(raw.execute(_SQL_STATUS, (mailbox_id,)).fetchone())
                keywords = {f for (text,) in raw.execute(SQL_KEYWORD_FLAGS, (mailbox_id,)) for f in text.split()
                            if not f.startswith("\\")}
            finally:
                raw.execute("COMMIT")
            return MailboxSnapshot(uids, int(now[2]), int(now[3]), int(now[4]), first_unseen,
                                   tuple(sorted(keywords)), counts), now

        if cached is not None or version is None or version[2] <= INLINE_ROWS:  # cheaper here than a hop
            snap, now = read(self.db.quick())
        else:
            snap, now = await self.db.read(lambda conn: read(_raw(conn)))
        self.cache.put(("uids", mailbox_id), uid_version(now), snap.uids, len(snap.uids))
        return replace(snap, uids=array("I", snap.uids))  # the view changes its copy

    async def message_rows(self, mailbox_id: int, uids: Sequence[int]) -> list[MessageEntry]:
        if not uids:
            return []
        if len(uids) > INLINE_ROWS:
            return await self.db.read(lambda conn: _message_rows(_raw(conn), mailbox_id, uids))
        return self.rows.read(self.db.quick(), mailbox_id, uids)

    async def deleted_uids(self, mailbox_id: int) -> list[int]:
        return [r[0] for r in self.db.quick().execute(SQL_DELETED_UIDS, (mailbox_id,))]

    async def list_messages(self, mailbox_id: int) -> list[MessageEntry]:
        query = f"SELECT {_MSG_COLS} FROM messages WHERE mailbox_id = ? ORDER BY uid"
        count = self.db.quick().execute("SELECT count(*) FROM messages WHERE mailbox_id = ?", (mailbox_id,)).fetchone()
        if count[0] <= INLINE_ROWS:  # small mailboxes: cheaper than a hop to the read pool
            return [_entry(r) for r in self.db.quick().execute(query, (mailbox_id,))]

        def job(conn: Connection) -> list[MessageEntry]:
            return [_entry(r) for r in _raw(conn).execute(query, (mailbox_id,))]
        return await self.db.read(job)

    async def mailbox_changes(self, mailbox_id: int, since_modseq: int, known_uidnext: int) -> MailboxChanges:
        raw = self.db.quick()
        box = raw.execute(_SQL_STATUS, (mailbox_id,)).fetchone()  # uidnext, uidvalidity, highestmodseq, ...
        if box is None:
            raise NotFound("unknown_mailbox", str(mailbox_id))
        if box[2] == since_modseq:  # the common case after most commands: nothing happened
            return MailboxChanges((), (), (), since_modseq, box[0], _counts(box))
        raw.execute("BEGIN")  # one snapshot for the queries below
        try:
            box = raw.execute(_SQL_STATUS, (mailbox_id,)).fetchone()
            new = tuple(_entry(r) for r in raw.execute(
                f"SELECT {_MSG_COLS} FROM messages WHERE mailbox_id = ? AND uid >= ? ORDER BY uid",
                (mailbox_id, known_uidnext)))
            changed = tuple(FlagChange(r[0], tuple(r[1].split()), r[2]) for r in raw.execute(
                "SELECT uid, flags, modseq FROM messages WHERE mailbox_id = ? AND modseq > ? AND uid < ? "
                "ORDER BY uid", (mailbox_id, since_modseq, known_uidnext)))
            gone = tuple(r[0] for r in raw.execute(
                "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? AND uid < ? ORDER BY uid",
                (mailbox_id, since_modseq, known_uidnext)))
            return MailboxChanges(new, changed, gone, box[2], box[0], _counts(box))
        finally:
            raw.execute("COMMIT")

    async def store_flags(self, mailbox_id: int, uids: list[int], mode: str, flags: tuple[str, ...],
                          unchangedsince: int | None = None) -> tuple[list[FlagChange], list[int]]:
        """RFC 3501 §6.4.6 STORE (+FLAGS / -FLAGS / FLAGS) with RFC 7162 UNCHANGEDSINCE.

        Returns the messages whose flags changed (with their new MODSEQ) and the UIDs that failed
        the UNCHANGEDSINCE test."""
        def job(conn: Connection) -> tuple[list[FlagChange], list[int]]:
            raw = _raw(conn)
            changed: list[FlagChange] = []
            failed: list[int] = []
            modseq = 0
            for chunk_start in range(0, len(uids), 500):
                chunk = uids[chunk_start:chunk_start + 500]
                marks = ",".join("?" * len(chunk))
                rows = raw.execute(f"SELECT id, uid, flags, modseq FROM messages WHERE mailbox_id = ? "
                                   f"AND uid IN ({marks}) ORDER BY uid", (mailbox_id, *chunk)).fetchall()
                for row_id, uid, old_text, old_modseq in rows:
                    if unchangedsince is not None and old_modseq > unchangedsince:
                        failed.append(uid)
                        continue
                    old = old_text.split()
                    new = _apply(old, mode, flags)
                    if new == old:
                        continue
                    if not modseq:
                        modseq = _bump(raw, mailbox_id)
                    raw.execute("UPDATE messages SET flags = ?, modseq = ? WHERE id = ?", (" ".join(new), modseq, row_id))
                    changed.append(FlagChange(uid, tuple(new), modseq))
            return changed, failed
        return await self._write(job)  # type: ignore[no-any-return]

    async def expunge(self, mailbox_id: int, uids: list[int]) -> int:
        def job(conn: Connection) -> int:
            raw = _raw(conn)
            rows: list[Any] = []
            for start in range(0, len(uids), 500):
                chunk = uids[start:start + 500]
                rows += raw.execute(f"SELECT id, uid, size, blob_id FROM messages WHERE mailbox_id = ? AND uid IN "
                                    f"({','.join('?' * len(chunk))})", (mailbox_id, *chunk)).fetchall()
            release_blobs(conn, _expunge_rows(raw, mailbox_id, rows))
            return len(rows)
        return int(await self._write(job))

    async def copy_messages(self, source_id: int, uids: list[int], target_id: int, move: bool = False,
                            limit: int | None = None) -> list[tuple[int, int]]:
        """Copy (or move: copy + expunge, atomically) messages; returns (source UID, new UID) pairs.
        The blob is shared, not duplicated; the target account is charged (RFC 9208) unless it is a move
        within one account. With ``limit``, PreconditionFailed (and nothing written) if the charge would
        take the target account's usage past it."""
        def job(conn: Connection) -> list[tuple[int, int]]:
            raw = _raw(conn)
            rows: list[Any] = []
            for start in range(0, len(uids), 500):
                chunk = uids[start:start + 500]
                rows += raw.execute(f"SELECT id, uid, size, blob_id, flags, internal_date, prefix, queue_id, sort_date "
                                    f"FROM messages WHERE mailbox_id = ? AND uid IN ({','.join('?' * len(chunk))}) "
                                    f"ORDER BY uid", (source_id, *chunk)).fetchall()
            if not rows:
                return []
            target = raw.execute("SELECT m.uidnext, a.id, a.used_bytes FROM mailboxes m "
                                 "JOIN accounts a ON a.id = m.account_id WHERE m.id = ?", (target_id,)).fetchone()
            uidnext, account_id, used = target
            total = sum(r[2] for r in rows)
            same_account = move and raw.execute("SELECT account_id FROM mailboxes WHERE id = ?",
                                                (source_id,)).fetchone()[0] == account_id
            if limit is not None and not same_account and used + total > limit:
                raise PreconditionFailed(f"copy of {total} octets past the limit {limit}")
            modseq = _bump(raw, target_id)
            pairs = []
            for i, r in enumerate(rows):
                raw.execute("INSERT INTO messages (mailbox_id, uid, modseq, flags, internal_date, size, blob_id, "
                            "prefix, queue_id, sort_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (target_id, uidnext + i, modseq, r[4], r[5], r[2], r[3], r[6], r[7], r[8]))
                pairs.append((r[1], uidnext + i))
            raw.execute("UPDATE mailboxes SET uidnext = ? WHERE id = ?", (uidnext + len(rows), target_id))
            raw.executemany("UPDATE blobs SET refcount = refcount + 1, zero_since = NULL WHERE id = ?",
                            [(r[3],) for r in rows])
            raw.execute("UPDATE accounts SET used_bytes = used_bytes + ?, message_count = message_count + ? "
                        "WHERE id = ?", (total, len(rows), account_id))
            if move:
                release_blobs(conn, _expunge_rows(raw, source_id, [(r[0], r[1], r[2], r[3]) for r in rows]))
            return pairs
        return list(await self._write(job))

    async def sweep_blobs(self, grace: float, limit: int = 1000) -> int:
        """Remove blobs unreferenced for longer than ``grace`` seconds: rows, search documents, what
        the content filter noted it learnt from them, and files (discarded: renamed aside; the caller purges them after the commit). Runs in the
        writer thread, so it is serialised with commit_ingest's check that a blob it references
        still exists: identical bytes written meanwhile are either discarded with it (the commit
        then refuses, the client retries) or written after it (a new row)."""
        def job(conn: Connection) -> int:
            raw = _raw(conn)
            # Kept rows of expunged messages go with the grace period of their blobs.
            raw.execute("DELETE FROM expunged_rows WHERE expunged_at < ?", (time.time() - grace,))
            dead = [r[0] for r in raw.execute("SELECT id FROM blobs WHERE refcount <= 0 AND zero_since < ? LIMIT ?",
                                              (time.time() - grace, limit))]
            drop_documents(raw, dead)
            raw.executemany("DELETE FROM bayes_learned WHERE blob_id = ?", [(b,) for b in dead])
            raw.executemany("DELETE FROM blobs WHERE id = ?", [(b,) for b in dead])
            for blob_id in dead:
                self.blobs.discard(blob_id)
            return len(dead)
        return int(await self._write(job))

    async def blob_meta(self, blob_id: str) -> BlobMeta | None:
        r = self.db.quick().execute("SELECT envelope, bodystructure, body FROM blobs WHERE id = ?",
                                    (blob_id,)).fetchone()
        return None if r is None or r[0] is None else BlobMeta(r[0], r[1], r[2])

    async def set_blob_meta(self, blob_id: str, meta: BlobMeta) -> None:
        def job(conn: Connection) -> None:
            _raw(conn).execute("UPDATE blobs SET envelope = ?, bodystructure = ?, body = ? WHERE id = ?",
                               (meta.envelope, meta.bodystructure, meta.body, blob_id))
            if meta.sort is not None:
                write_keys(_raw(conn), [(blob_id, meta.sort)])
        await self._write(job)


def _message_rows(raw: sqlite3.Connection, mailbox_id: int, uids: Sequence[int]) -> list[MessageEntry]:
    """Rows of ascending ``uids``, then the kept rows of those expunged meanwhile, merged by UID."""
    out: list[MessageEntry] = []
    for start in range(0, len(uids), 500):
        chunk = uids[start:start + 500]
        if chunk[-1] - chunk[0] < 2 * len(chunk):  # dense: one range scan beats 500 parameters
            wanted = set(chunk)
            out += [_entry(r) for r in raw.execute(
                f"SELECT {_MSG_COLS} FROM messages WHERE mailbox_id = ? AND uid BETWEEN ? AND ? ORDER BY uid",
                (mailbox_id, chunk[0], chunk[-1])) if r[2] in wanted]
        else:
            out += [_entry(r) for r in raw.execute(
                f"SELECT {_MSG_COLS} FROM messages WHERE mailbox_id = ? AND uid IN ({','.join('?' * len(chunk))}) "
                f"ORDER BY uid", (mailbox_id, *chunk))]
    if len(out) < len(uids):
        found = {e.uid for e in out}
        missing = [u for u in uids if u not in found]
        gone: list[MessageEntry] = []
        for start in range(0, len(missing), 500):
            chunk = missing[start:start + 500]
            gone += [_entry(r) for r in raw.execute(
                f"SELECT {_GONE_COLS} FROM expunged_rows WHERE mailbox_id = ? AND uid IN "
                f"({','.join('?' * len(chunk))})", (mailbox_id, *chunk))]
        if gone:
            out = sorted(out + gone, key=lambda e: e.uid)
    return out


def _apply(old: list[str], mode: str, flags: tuple[str, ...]) -> list[str]:
    if mode == "":
        new = list(dict.fromkeys(flags))
    elif mode == "+":
        new = old + [f for f in flags if f not in old]
    else:
        new = [f for f in old if f not in flags]
    return new
