"""SqliteFetchStore (interfaces/fetch.py): fetch accounts and the remote UIDs already committed."""

from __future__ import annotations

import sqlite3
import time

from sqlalchemy import Connection

from dizimail.model.errors import Conflict, NotFound
from dizimail.model.outbound import FetchAccount
from dizimail.storage.sqlite.db import SqliteDatabase, driver

_FETCH = ("SELECT f.id, a.local_part || '@' || d.name, f.mode, f.protocol, f.host, f.port, f.security, f.verify, "
          "f.username, f.password, f.interval, f.keep, f.last_run, f.last_error, f.outside_only FROM fetch_accounts f "
          "LEFT JOIN accounts a ON a.id = f.account_id LEFT JOIN domains d ON d.id = a.domain_id ORDER BY f.id")


class SqliteFetchStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def list_fetch_accounts(self) -> list[FetchAccount]:
        def job(conn: Connection) -> list[FetchAccount]:
            return [FetchAccount(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), r[8], r[9], r[10],
                                 bool(r[11]), r[12], r[13], bool(r[14])) for r in driver(conn).execute(_FETCH)]
        return await self.db.read(job)

    async def add_fetch_account(self, account: FetchAccount) -> int:
        def job(conn: Connection) -> int:
            raw = driver(conn)
            owner = None
            if account.account is not None:
                local, _, domain = account.account.lower().rpartition("@")
                row = raw.execute("SELECT a.id FROM accounts a JOIN domains d ON d.id = a.domain_id "
                                  "WHERE d.name = ? AND a.local_part = ?", (domain, local)).fetchone()
                if row is None:
                    raise NotFound("unknown_user", account.account)
                owner = row[0]
            try:
                cur = raw.execute(
                    "INSERT INTO fetch_accounts (account_id, mode, protocol, host, port, security, verify, username, "
                    "password, interval, keep, created, outside_only) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (owner, account.mode, account.protocol, account.host, account.port, account.security,
                     account.verify, account.username, account.password, account.interval, account.keep,
                     time.time(), account.outside_only))
            except sqlite3.IntegrityError as exc:
                raise Conflict("fetch_exists", f"{account.username}@{account.host}") from exc
            return int(cur.lastrowid or 0)
        return await self.db.write(job)

    async def remove_fetch_account(self, fetch_id: int) -> None:
        def job(conn: Connection) -> None:
            if not driver(conn).execute("DELETE FROM fetch_accounts WHERE id = ?", (fetch_id,)).rowcount:
                raise NotFound("unknown_fetch", str(fetch_id))
        await self.db.write(job)

    async def set_fetch_password(self, fetch_id: int, password: str) -> None:
        def job(conn: Connection) -> None:
            driver(conn).execute("UPDATE fetch_accounts SET password = ? WHERE id = ?", (password, fetch_id))
        await self.db.write(job)

    async def fetch_seen(self, fetch_id: int) -> set[str]:
        return {str(r[0]) for r in self.db.quick().execute("SELECT uid FROM fetch_seen WHERE fetch_id = ?", (fetch_id,))}

    async def forget_fetched(self, fetch_id: int, uids: set[str]) -> None:
        def job(conn: Connection) -> None:
            driver(conn).executemany("DELETE FROM fetch_seen WHERE fetch_id = ? AND uid = ?",
                                   [(fetch_id, u) for u in uids])
        await self.db.write(job)

    async def fetch_ran(self, fetch_id: int, when: float, error: str) -> None:
        def job(conn: Connection) -> None:
            driver(conn).execute("UPDATE fetch_accounts SET last_run = ?, last_error = ? WHERE id = ?",
                               (when, error[:500], fetch_id))
        await self.db.write(job)
