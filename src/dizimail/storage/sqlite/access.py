"""SqliteAccessListStore (interfaces/access.py): the block and allow lists."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import Connection

from dizimail.model.access import AccessEntry, ListName
from dizimail.model.errors import NotFound
from dizimail.storage.sqlite.db import SqliteDatabase, driver


class SqliteAccessListStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def list_access(self) -> list[AccessEntry]:
        def job(conn: Connection) -> list[AccessEntry]:  # a scan (lists may be imported by the thousand): the pool
            rows = driver(conn).execute(
                "SELECT list, scope, pattern, note, created FROM access_entries ORDER BY list, scope, pattern")
            return [AccessEntry(ListName(r[0]), r[1], r[2], r[3], r[4]) for r in rows]
        return await self.db.read(job)

    async def access_version(self) -> tuple[int, int]:
        count, total = self.db.quick().execute("SELECT count(*), coalesce(sum(id), 0) FROM access_entries").fetchone()
        return int(count), int(total)

    async def add_access(self, entries: Sequence[AccessEntry]) -> int:
        now = time.time()

        def job(conn: Connection) -> int:
            cursor = driver(conn)
            added = 0
            for e in entries:
                added += cursor.execute(
                    "INSERT OR IGNORE INTO access_entries (list, scope, pattern, note, created) VALUES (?, ?, ?, ?, ?)",
                    (str(e.list), e.scope, e.pattern, e.note, e.created or now)).rowcount
            return added
        return await self.db.write(job)

    async def remove_access(self, name: ListName, scope: str, pattern: str) -> None:
        def job(conn: Connection) -> None:
            if not driver(conn).execute("DELETE FROM access_entries WHERE list = ? AND scope = ? AND pattern = ?",
                                        (str(name), scope, pattern)).rowcount:
                raise NotFound("unknown_access_entry", f"{name} {scope or 'global'} {pattern}")
        await self.db.write(job)
