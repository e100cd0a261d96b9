"""SqliteMetaStore's reads for SEARCH, SORT and THREAD: stored fields as UID sets and orders.

The sort keys live in the blob row (computed once per blob at ingest, migration 0008), so a message
sent to 5,000 staff has them once. Reads of a large mailbox run in the read pool; a small one is
answered on the calling thread, which costs less than the hop (the same rule as SELECT).
"""

from __future__ import annotations

import sqlite3
from array import array
from collections.abc import Awaitable, Callable, Sequence
from operator import itemgetter
from typing import Any, TypeVar

from dizimail.model.types import MessageFilter, MessageKeys, SortKeys
from dizimail.storage.sqlite.db import SqliteDatabase
from dizimail.storage.sqlite.sql import (
    DELETED,
    NO_KEYS,
    SQL_VERSION,
    UNSEEN,
    MailboxCache,
    raw,
    read_mailbox,
    uid_version,
)

T = TypeVar("T")
# The blobs of a mailbox that lack keys (search.py: a document, the same way): from the partial index of
# the few blobs that lack them to their messages, never from the mailbox's messages (CROSS JOIN and INDEXED
# BY fix the plan: without statistics SQLite chose the mailbox index, 20,000 x 20,000 probes).
SQL_NO_KEYS = (f"SELECT b.id FROM blobs b CROSS JOIN messages m INDEXED BY ix_messages_blob "
               f"ON m.blob_id = b.id WHERE b.{NO_KEYS} AND m.mailbox_id = ?1 "
               f"UNION SELECT blob_id FROM messages WHERE mailbox_id = ?1 AND sort_date IS NULL")
KEY_COLUMNS = ("base_subject, reply, sent, sent_day, sort_from, sort_to, sort_cc, display_from, display_to, "
                "message_id, refs")
_SQL_SET_KEYS = f"UPDATE blobs SET {', '.join(c + ' = ?' for c in KEY_COLUMNS.split(', '))} WHERE id = ?"
_ORDER = {"arrival": "m.internal_date", "date": "m.sort_date", "size": "m.size",
          "subject": "b.base_subject", "from": "b.sort_from", "to": "b.sort_to", "cc": "b.sort_cc",
          "displayfrom": "b.display_from", "displayto": "b.display_to"}
_ROW_ONLY = frozenset({"arrival", "date", "size"})  # in the message row: no join to the blob


def key_values(keys: SortKeys) -> tuple[Any, ...]:
    """The blob row's key columns, in KEY_COLUMNS order."""
    return (keys.subject, int(keys.reply), keys.sent, keys.sent_day, keys.sort_from, keys.sort_to, keys.sort_cc,
            keys.display_from, keys.display_to, keys.message_id, " ".join(keys.references))


def sort_sql(order: Sequence[tuple[str, bool]]) -> str:
    """The UIDs of mailbox ?1 in the order of ``(key, descending)`` pairs, ties by ascending UID."""
    join = "" if _ROW_ONLY.issuperset(name for name, _ in order) else "JOIN blobs b ON b.id = m.blob_id "
    keys = ", ".join(f"{_ORDER[name]}{' DESC' if reverse else ''}" for name, reverse in order)
    return f"SELECT m.uid FROM messages m {join}WHERE m.mailbox_id = ?1 ORDER BY {keys}, m.uid"


def write_keys(conn: sqlite3.Connection, items: Sequence[tuple[str, SortKeys]]) -> None:
    """Store blobs' sort keys, and their messages' sort dates (inside the caller's transaction)."""
    conn.executemany(_SQL_SET_KEYS, [(*key_values(keys), blob_id) for blob_id, keys in items])
    conn.executemany("UPDATE messages SET sort_date = coalesce(?, internal_date) WHERE blob_id = ? AND sort_date IS NULL",
                     [(keys.sent, blob_id) for blob_id, keys in items])


def _keys(r: Sequence[Any]) -> SortKeys | None:
    if r[0] is None:
        return None
    return SortKeys(r[0], bool(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], tuple(r[10].split()))


def filter_sql(f: MessageFilter) -> tuple[str, list[Any], bool]:
    """The WHERE clause (after ``m.mailbox_id = ?1``) of a filter, its parameters, and whether it
    needs the blob row (``b``)."""
    conds: list[str] = []
    params: list[Any] = []
    if f.flag is not None:
        name = f.flag.lower()
        if name == "\\seen":  # UNSEEN through the partial index; SEEN reads the rows
            conds.append(UNSEEN if not f.flag_set else f"NOT ({UNSEEN})")
        elif name == "\\deleted":
            conds.append(DELETED if f.flag_set else f"NOT ({DELETED})")
        else:  # flags are space-separated atoms: a padded substring is exactly one flag
            conds.append(f"instr(' ' || lower(m.flags) || ' ', ?) {'>' if f.flag_set else '='} 0")
            params.append(f" {name} ")
    for column, op, value in (("m.size", ">", f.larger), ("m.size", "<", f.smaller),
                              ("m.internal_date", ">=", f.internal_from), ("m.internal_date", "<", f.internal_until),
                              ("b.sent_day", ">=", f.sent_from_day), ("b.sent_day", "<", f.sent_until_day),
                              ("m.modseq", ">=", f.modseq_from)):
        if value is not None:
            conds.append(f"{column} {op} ?")
            params.append(value)
    needs_blob = f.sent_from_day is not None or f.sent_until_day is not None
    return " AND ".join(conds) or "1", params, needs_blob


class SqliteKeyOps:
    db: SqliteDatabase
    cache: MailboxCache
    _write: Callable[..., Awaitable[Any]]

    async def _read(self, mailbox_id: int, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await read_mailbox(self.db, mailbox_id, fn)

    async def filter_uids(self, mailbox_id: int, f: MessageFilter) -> set[int]:
        where, params, needs_blob = filter_sql(f)
        join = "JOIN blobs b ON b.id = m.blob_id " if needs_blob else ""
        sql = f"SELECT m.uid FROM messages m {join}WHERE m.mailbox_id = ? AND {where}"
        return await self._read(mailbox_id, lambda raw: set(map(itemgetter(0), raw.execute(sql, (mailbox_id,
                                                                                                   *params)))))

    async def sorted_uids(self, mailbox_id: int, order: Sequence[tuple[str, bool]]) -> array[int]:
        """One ordered read; kept per mailbox version, since the order changes only when messages
        arrive or leave (or blobs get their keys: set_sort_keys forgets every order)."""
        sql = sort_sql(order)
        cache_key = ("sorted", mailbox_id, tuple(order))

        def read(raw: sqlite3.Connection) -> tuple[tuple[Any, ...] | None, array[int]]:
            raw.execute("BEGIN")  # the version and the order of one instant
            try:
                version = raw.execute(SQL_VERSION, (mailbox_id,)).fetchone()
                return version, array("I", map(itemgetter(0), raw.execute(sql, (mailbox_id,))))
            finally:
                raw.execute("COMMIT")
        version = self.db.quick().execute(SQL_VERSION, (mailbox_id,)).fetchone()
        if version is not None:
            cached = self.cache.get(cache_key, uid_version(version))
            if cached is not None:
                return cached  # type: ignore[no-any-return]
        version, ordered = await self._read(mailbox_id, read)
        if version is not None:
            self.cache.put(cache_key, uid_version(version), ordered, len(ordered))
        return ordered

    async def message_keys(self, mailbox_id: int) -> list[MessageKeys]:
        sql = (f"SELECT m.uid, m.internal_date, m.size, {', '.join('b.' + c for c in KEY_COLUMNS.split(', '))} "
               f"FROM messages m JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = ? ORDER BY m.uid")
        return await self._read(mailbox_id, lambda raw: [MessageKeys(r[0], r[1], r[2], _keys(r[3:]))
                                                         for r in raw.execute(sql, (mailbox_id,))])

    async def blobs_without_keys(self, mailbox_id: int) -> list[str]:
        return [r[0] for r in self.db.quick().execute(SQL_NO_KEYS, (mailbox_id,))]

    async def set_sort_keys(self, items: Sequence[tuple[str, SortKeys]]) -> None:
        await self._write(lambda conn: write_keys(raw(conn), items))
        self.cache.clear()  # orders computed without these keys
