"""What the SQLite stores share: the raw connection, partial-index conditions, where a read runs.

The conditions of partial indexes must stay textually identical to their migrations (0007, 0008):
SQLite uses a partial index only for a WHERE clause that contains its condition as written.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import Connection

from dizimail.storage.sqlite.db import SqliteDatabase

T = TypeVar("T")
INLINE_ROWS = 2000  # mailboxes up to this many UIDs are read on the calling thread
UNSEEN = "' ' || flags || ' ' NOT LIKE '% \\Seen %'"  # 0007
DELETED = "' ' || flags || ' ' LIKE '% \\Deleted %'"  # 0007
KEYWORDS = "(' ' || flags) GLOB '* [^\\]*'"  # 0007
NO_KEYS = "base_subject IS NULL"  # 0008: a blob whose sort keys were never computed
UNINDEXED = "indexed = 0"  # 0008: a blob without its search document


def raw(conn: Connection) -> sqlite3.Connection:
    """The DBAPI connection under a SQLAlchemy one (hot paths skip Core: ~100 µs a statement)."""
    driver = conn.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver


async def read_mailbox(db: SqliteDatabase, mailbox_id: int, fn: Callable[[sqlite3.Connection], T]) -> T:
    """``fn`` on the calling thread for a small mailbox (cheaper than the hop), else in the read
    pool: a scan of a large mailbox never runs on the event loop."""
    box = db.quick().execute("SELECT uidnext FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone()
    if box is None or box[0] <= INLINE_ROWS:
        return fn(db.quick())
    return await db.read(lambda conn: fn(raw(conn)))


# What identifies a mailbox's set of messages (new ones raise uidnext, an expunge logs a MODSEQ); the
# account id and UIDVALIDITY tell a mailbox from a later one that reuses its row id.
SQL_VERSION = ("SELECT account_id, uidvalidity, uidnext, highestmodseq, recent_uid, "
               "(SELECT max(modseq) FROM expunged WHERE mailbox_id = ?1) FROM mailboxes WHERE id = ?1")


def uid_version(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The part of a SQL_VERSION row that changes exactly when messages arrive or leave."""
    return (row[0], row[1], row[2], row[5])


class MailboxCache:
    """Per-process results about mailboxes (the UIDs of SELECT, SORT orders), each
    valid for one version of its mailbox read from the database (SQL_VERSION): a change by this or
    any other process moves the version, so a stale entry is never returned, only recomputed.
    Bounded by the number of UIDs held; the least recently used entries go first."""

    def __init__(self, max_weight: int = 2_000_000) -> None:
        self.max_weight = max_weight
        self._items: OrderedDict[Hashable, tuple[Hashable, Any, int]] = OrderedDict()
        self._weight = 0

    def get(self, key: Hashable, version: Hashable) -> Any:
        item = self._items.get(key)
        if item is None or item[0] != version:
            return None
        self._items.move_to_end(key)
        return item[1]

    def put(self, key: Hashable, version: Hashable, value: Any, weight: int = 1) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self._weight -= old[2]
        if weight > self.max_weight:
            return
        self._items[key] = (version, value, weight)
        self._weight += weight
        while self._weight > self.max_weight:
            _key, (_version, _value, dropped) = self._items.popitem(last=False)
            self._weight -= dropped

    def clear(self) -> None:
        self._items.clear()
        self._weight = 0
