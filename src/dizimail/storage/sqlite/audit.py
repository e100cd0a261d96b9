"""SqliteAuditStore (interfaces/audit.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from dizimail.model.audit import AuditEntry
from dizimail.storage.sqlite.db import SqliteDatabase, driver

_COLS = "id, at, actor, role, ip, action, target, domain, before, after"


class SqliteAuditStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def append_audit(self, at: float, actor: str, role: str, ip: str, action: str, target: str, domain: str,
                           before: str, after: str) -> None:
        def job(conn: Connection) -> None:
            driver(conn).execute(f"INSERT INTO audit_log ({_COLS.partition(', ')[2]}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                 (at, actor, role, ip, action, target, domain, before, after))
        await self.db.write(job)

    async def audit_entries(self, *, domains: tuple[str, ...] | None = None, actor: str = "", action: str = "",
                            since: float = 0.0, until: float = 0.0, before_id: int = 0,
                            limit: int = 100) -> list[AuditEntry]:
        where: list[str] = []
        args: list[Any] = []
        if domains is not None:
            where.append(f"domain IN ({', '.join('?' * len(domains))})" if domains else "0")
            args += domains
        if actor:
            where.append("actor = ?")
            args.append(actor)
        if action:  # a prefix, matched on the index order without LIKE's wildcards
            where.append("substr(action, 1, ?) = ?")
            args += [len(action), action]
        if since:
            where.append("at >= ?")
            args.append(since)
        if until:
            where.append("at < ?")
            args.append(until)
        if before_id:
            where.append("id < ?")
            args.append(before_id)
        sql = (f"SELECT {_COLS} FROM audit_log" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY id DESC LIMIT ?")

        def read(conn: Connection) -> list[AuditEntry]:
            return [AuditEntry(*r) for r in driver(conn).execute(sql, (*args, limit))]
        return await self.db.read(read)
