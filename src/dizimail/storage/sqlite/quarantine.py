"""SqliteQuarantineStore (interfaces/quarantine.py): messages held for a human. A row holds one
reference to its blob; it is written and taken back inside ``commit_ingest`` (hold, release), so a
message is always in exactly one place: the quarantine, or the mailboxes and the queue."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from sqlalchemy import Connection

from dizimail.model.types import Quarantined
from dizimail.storage.sqlite.db import SqliteDatabase, driver
from dizimail.storage.sqlite.mailboxes import release_blobs

_COLUMNS = ("id, queue_id, blob_id, size, sender, recipients, kind, reason, score, findings, prefix, subject, "
            "from_addr, created, expires, signature")


def hold(cur: sqlite3.Cursor, q: Quarantined) -> int:
    """Insert the entry (inside commit_ingest's transaction, which also counts its blob reference)."""
    cur.execute(f"INSERT INTO quarantine ({_COLUMNS.partition(', ')[2]}) VALUES ({', '.join('?' * 15)})",
                (q.queue_id, q.blob_id, q.size, q.sender, json.dumps(list(q.recipients)), q.kind, q.reason, q.score,
                 json.dumps([list(f) for f in q.findings], ensure_ascii=False), q.prefix, q.subject, q.from_,
                 q.created, q.expires, q.signature))
    return int(cur.lastrowid or 0)


def take(conn: Connection, entry_id: int) -> str | None:
    """Remove the entry and drop its blob reference; its blob id, or None if it is gone already."""
    row = driver(conn).execute("DELETE FROM quarantine WHERE id = ? RETURNING blob_id", (entry_id,)).fetchone()
    if row is None:
        return None
    release_blobs(conn, [row[0]])
    return str(row[0])


def _entry(r: Any) -> Quarantined:
    return Quarantined(id=r[0], queue_id=r[1], blob_id=r[2], size=r[3], sender=r[4],
                       recipients=tuple(json.loads(r[5])), kind=r[6], reason=r[7], score=r[8],
                       findings=tuple((str(c), str(res), float(p), str(why)) for c, res, p, why in json.loads(r[9])),
                       prefix=bytes(r[10]), subject=r[11], from_=r[12], created=r[13], expires=r[14],
                       signature=bytes(r[15]))


class SqliteQuarantineStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def list_quarantine(self, limit: int = 10_000, *, lists: bool = False,
                              reason: str | None = None) -> list[Quarantined]:
        where = "kind = 'list'" if lists else "kind != 'list'"
        args: tuple[str, ...] = ()
        if reason is not None:
            where, args = where + " AND reason = ?", (reason,)

        def job(conn: Connection) -> list[Quarantined]:
            return [_entry(r) for r in driver(conn).execute(
                f"SELECT {_COLUMNS} FROM quarantine WHERE {where} ORDER BY id DESC LIMIT ?", (*args, limit))]
        return await self.db.read(job)

    async def get_quarantined(self, entry_id: int) -> Quarantined | None:
        def job(conn: Connection) -> Quarantined | None:
            r = driver(conn).execute(f"SELECT {_COLUMNS} FROM quarantine WHERE id = ?", (entry_id,)).fetchone()
            return None if r is None else _entry(r)
        return await self.db.read(job)

    async def delete_quarantined(self, entry_id: int) -> bool:
        def job(conn: Connection) -> bool:
            return take(conn, entry_id) is not None
        return bool(await self.db.write(job))

    async def expire_quarantine(self, now: float, limit: int = 1000) -> int:
        def job(conn: Connection) -> int:
            ids = [r[0] for r in driver(conn).execute("SELECT id FROM quarantine WHERE expires < ? LIMIT ?",
                                                      (now, limit))]
            for entry_id in ids:
                take(conn, entry_id)
            return len(ids)
        return int(await self.db.write(job))
