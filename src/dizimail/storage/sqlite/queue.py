"""SqliteQueueStore (interfaces/queue.py): leases on the queue row, outcomes per recipient.

A lease finds the due messages in a read (a look at the due index: 164 ms with 100,000 due, which
would otherwise hold the write lock), then takes each in the writer thread only if it is still
unleased and not held: two runners that read the same candidates never both take one (the
PostgreSQL store will use SKIP LOCKED).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from dizimail.model.outbound import QueueItem, QueueRecipientRow, RecipientOutcome
from dizimail.model.types import PENDING, QueuedRecipient, QueueEntry, RcptStatus
from dizimail.storage.sqlite.db import SqliteDatabase
from dizimail.storage.sqlite.mailboxes import release_blobs
from dizimail.storage.sqlite.tables import queue, queue_recipients

_ITEM = ("SELECT id, blob_id, sender, size, created, params, prefix, held, warned, lease_owner, lease_expiry "
         "FROM queue WHERE id = ?")
_RCPTS = ("SELECT id, address, notify, orcpt, status, attempts, next_attempt, last_error, sender, "
          "coalesce(prefix, X'') FROM queue_recipients "
          "WHERE queue_id = ? ORDER BY id")
# Messages with a recipient due, oldest first. The due recipients are found once, through their index, and
# the messages looked up by id: as a correlated EXISTS, SQLite searched the due index again for every
# message of the queue (6,000 deferred messages after an outage: 3.6 s per lease, quadratic).
_DUE = ("SELECT q.id FROM queue q WHERE q.id IN (SELECT r.queue_id FROM queue_recipients r "
        "WHERE r.status IN ('queued', 'deferred') AND r.next_attempt <= ?2) AND q.held = 0 AND q.lease_expiry < ?1 "
        "ORDER BY q.created LIMIT ?3")


def _raw(conn: Connection) -> sqlite3.Connection:
    return conn.connection.driver_connection  # type: ignore[return-value]


def _item(raw: sqlite3.Connection, queue_id: str, pending_only: bool) -> QueueItem | None:
    row = raw.execute(_ITEM, (queue_id,)).fetchone()
    if row is None:
        return None
    item = QueueItem(row[0], row[1], row[2], row[3], row[4], json.loads(row[5] or "{}"), bytes(row[6]),
                     bool(row[7]), bool(row[8]), row[9], row[10])
    for r in raw.execute(_RCPTS, (queue_id,)):
        rcpt = QueueRecipientRow(r[0], r[1], r[2], r[3], RcptStatus(r[4]), r[5], r[6], r[7], r[8], bytes(r[9]))
        if not pending_only or rcpt.status in PENDING:
            item.recipients.append(rcpt)
    return item


class SqliteQueueStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def list_queue(self) -> list[QueueEntry]:
        def job(conn: Connection) -> list[QueueEntry]:
            rows = conn.execute(select(queue.c.id, queue.c.sender, queue.c.created, queue.c.size, queue.c.held,
                                       queue_recipients.c.address, queue_recipients.c.notify,
                                       queue_recipients.c.orcpt, queue_recipients.c.status,
                                       queue_recipients.c.last_error, queue_recipients.c.attempts,
                                       queue_recipients.c.next_attempt)
                                .join(queue_recipients, queue_recipients.c.queue_id == queue.c.id)
                                .where(queue_recipients.c.status.in_(["queued", "deferred"]))
                                .order_by(queue.c.created, queue.c.id, queue_recipients.c.id))
            entries: dict[str, tuple[Any, list[QueuedRecipient]]] = {}
            for r in rows:
                entries.setdefault(r.id, (r, []))[1].append(
                    QueuedRecipient(r.address, r.notify, r.orcpt, RcptStatus(r.status), r.last_error, r.attempts,
                                    r.next_attempt))
            return [QueueEntry(r.id, r.sender, r.created, r.size, tuple(rc), bool(r.held))
                    for r, rc in entries.values()]
        return await self.db.read(job)

    async def get_item(self, queue_id: str) -> QueueItem | None:
        return await self.db.read(lambda conn: _item(_raw(conn), queue_id, False))

    async def lease(self, owner: str, now: float, expiry: float, limit: int) -> list[QueueItem]:
        candidates = await self.db.read(lambda conn: [r[0] for r in _raw(conn).execute(_DUE, (now, now, limit))])
        if not candidates:
            return []

        def job(conn: Connection) -> list[QueueItem]:
            raw = _raw(conn)
            items = []
            for i in candidates:
                taken = raw.execute("UPDATE queue SET lease_owner = ?, lease_expiry = ? WHERE id = ? AND held = 0 "
                                    "AND lease_expiry < ?", (owner, expiry, i, now)).rowcount
                item = _item(raw, i, True) if taken else None
                if item is None:
                    continue
                item.recipients = [r for r in item.recipients if r.next_attempt <= now]
                if item.recipients:
                    items.append(item)
                else:  # settled since the read: nothing due after all
                    raw.execute("UPDATE queue SET lease_owner = NULL, lease_expiry = 0 WHERE id = ?", (i,))
            return items
        return await self.db.write(job)

    async def renew(self, owner: str, queue_ids: Sequence[str], expiry: float) -> None:
        def job(conn: Connection) -> None:
            _raw(conn).executemany("UPDATE queue SET lease_expiry = ? WHERE id = ? AND lease_owner = ?",
                                   [(expiry, i, owner) for i in queue_ids])
        await self.db.write(job)

    async def release_all(self, owner: str) -> int:
        def job(conn: Connection) -> int:
            return _raw(conn).execute("UPDATE queue SET lease_owner = NULL, lease_expiry = 0 "
                                      "WHERE lease_owner = ?", (owner,)).rowcount
        return await self.db.write(job)

    async def settle(self, owner: str, queue_id: str, outcomes: Sequence[RecipientOutcome], *,
                     warned: bool = False, release: bool = False) -> bool:
        now = time.time()

        def job(conn: Connection) -> bool:
            raw = _raw(conn)
            raw.executemany(
                "UPDATE queue_recipients SET status = ?, last_error = ?, next_attempt = ?, attempts = attempts + 1, "
                "updated = ? WHERE id = ? AND queue_id = ?",
                [(o.status, o.detail[:1000], o.next_attempt, now, o.rcpt_id, queue_id) for o in outcomes])
            if warned:
                raw.execute("UPDATE queue SET warned = 1 WHERE id = ?", (queue_id,))
            if release:
                raw.execute("UPDATE queue SET lease_owner = NULL, lease_expiry = 0 WHERE id = ? AND lease_owner = ?",
                            (queue_id, owner))
            return _finish_if_done(conn, queue_id)
        return await self.db.write(job)

    async def set_held(self, queue_id: str | None, held: bool) -> int:
        def job(conn: Connection) -> int:
            if queue_id is None:
                return _raw(conn).execute("UPDATE queue SET held = ? WHERE held != ?", (held, held)).rowcount
            return _raw(conn).execute("UPDATE queue SET held = ? WHERE id = ?", (held, queue_id)).rowcount
        return await self.db.write(job)

    async def retry_now(self, queue_id: str | None, now: float) -> int:
        def job(conn: Connection) -> int:
            raw = _raw(conn)
            where, args = ("", ()) if queue_id is None else (" AND queue_id = ?", (queue_id,))
            raw.execute("UPDATE queue_recipients SET next_attempt = ? WHERE status IN ('queued', 'deferred')"
                        + where, (now, *args))
            count = raw.execute("SELECT count(DISTINCT queue_id) FROM queue_recipients WHERE status IN "
                                "('queued', 'deferred')" + where, args).fetchone()[0]
            return int(count)
        return await self.db.write(job)

    async def delete(self, queue_id: str) -> bool:
        def job(conn: Connection) -> bool:
            raw = _raw(conn)
            row = raw.execute("SELECT blob_id FROM queue WHERE id = ?", (queue_id,)).fetchone()
            if row is None:
                return False
            raw.execute("DELETE FROM queue_recipients WHERE queue_id = ?", (queue_id,))
            raw.execute("DELETE FROM queue WHERE id = ?", (queue_id,))
            release_blobs(conn, [row[0]])
            return True
        return await self.db.write(job)


def _finish_if_done(conn: Connection, queue_id: str) -> bool:
    """A message whose every recipient is final leaves the queue; its blob reference goes with it."""
    raw = _raw(conn)
    if raw.execute("SELECT 1 FROM queue_recipients WHERE queue_id = ? AND status IN ('queued', 'deferred') LIMIT 1",
                   (queue_id,)).fetchone():
        return False
    row = raw.execute("SELECT blob_id FROM queue WHERE id = ?", (queue_id,)).fetchone()
    if row is None:
        return True
    raw.execute("DELETE FROM queue_recipients WHERE queue_id = ?", (queue_id,))
    raw.execute("DELETE FROM queue WHERE id = ?", (queue_id,))
    release_blobs(conn, [row[0]])
    return True
