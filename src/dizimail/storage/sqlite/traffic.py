"""SqliteTrafficStore (interfaces/traffic.py)."""

from __future__ import annotations

from sqlalchemy import Connection

from dizimail.model.traffic import Flow, TrafficRow
from dizimail.storage.sqlite.db import SqliteDatabase, driver


class SqliteTrafficStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def add_traffic(self, rows: list[TrafficRow]) -> None:
        def job(conn: Connection) -> None:
            driver(conn).executemany(
                "INSERT INTO traffic (day, domain, kind, messages, bytes) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (day, domain, kind) DO UPDATE SET messages = messages + excluded.messages, "
                "bytes = bytes + excluded.bytes",
                [(r.day, r.domain, r.flow.value, r.messages, r.bytes) for r in rows])
        if rows:
            await self.db.write(job)

    async def traffic(self, first_day: str, last_day: str) -> list[TrafficRow]:
        def job(conn: Connection) -> list[TrafficRow]:
            return [TrafficRow(str(r[0]), str(r[1]), Flow(r[2]), int(r[3]), int(r[4])) for r in driver(conn).execute(
                "SELECT day, domain, kind, messages, bytes FROM traffic WHERE day >= ? AND day <= ? "
                "ORDER BY day, domain, kind", (first_day, last_day))]
        return await self.db.read(job)
