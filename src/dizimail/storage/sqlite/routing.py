"""SqliteRoutingStore (interfaces/routing.py): routes, relay networks, DKIM keys, settings, fetch accounts."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import Connection

from dizimail.model.errors import Conflict, NotFound
from dizimail.model.outbound import DkimKey, FetchAccount, Route
from dizimail.storage.sqlite.db import SqliteDatabase

_FETCH = ("SELECT f.id, a.local_part || '@' || d.name, f.mode, f.protocol, f.host, f.port, f.security, f.verify, "
          "f.username, f.password, f.interval, f.keep, f.last_run, f.last_error FROM fetch_accounts f "
          "LEFT JOIN accounts a ON a.id = f.account_id LEFT JOIN domains d ON d.id = a.domain_id ORDER BY f.id")


def _raw(conn: Connection) -> sqlite3.Connection:
    return conn.connection.driver_connection  # type: ignore[return-value]


CACHE_SECONDS = 0.5  # routes and settings are read on every message; another process's change shows within this


class SqliteRoutingStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        self._routes: dict[str, Route] = {}
        self._settings: dict[str, str] = {}
        self._loaded = -1.0

    def _fresh(self) -> None:
        now = time.monotonic()
        if now - self._loaded > CACHE_SECONDS:
            self._routes = {r[0]: Route(*r) for r in self._point(
                "SELECT domain, kind, host, port, created FROM routes", ())}
            self._settings = {str(k): str(v) for k, v in self._point("SELECT key, value FROM settings", ())}
            self._loaded = now

    def _point(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        return self.db.quick().execute(sql, args).fetchall()

    # --- routes ---------------------------------------------------------
    async def list_routes(self) -> list[Route]:
        return [Route(*r) for r in self._point(
            "SELECT domain, kind, host, port, created FROM routes ORDER BY domain", ())]

    async def get_route(self, domain: str) -> Route | None:
        self._fresh()
        return self._routes.get(domain)

    async def set_route(self, route: Route) -> None:
        def job(conn: Connection) -> None:
            _raw(conn).execute("INSERT OR REPLACE INTO routes (domain, kind, host, port, created) VALUES (?, ?, ?, ?, ?)",
                               (route.domain, route.kind, route.host, route.port, time.time()))
        await self.db.write(job)
        self._loaded = -1.0

    async def remove_route(self, domain: str) -> None:
        def job(conn: Connection) -> None:
            if not _raw(conn).execute("DELETE FROM routes WHERE domain = ?", (domain,)).rowcount:
                raise NotFound("unknown_route", domain)
        await self.db.write(job)
        self._loaded = -1.0

    # --- relay networks ---------------------------------------------------
    async def list_relay_networks(self) -> list[str]:
        return [str(r[0]) for r in self._point("SELECT network FROM relay_networks ORDER BY network", ())]

    async def add_relay_network(self, network: str) -> None:
        def job(conn: Connection) -> None:
            _raw(conn).execute("INSERT OR IGNORE INTO relay_networks (network, created) VALUES (?, ?)",
                               (network, time.time()))
        await self.db.write(job)

    async def remove_relay_network(self, network: str) -> None:
        def job(conn: Connection) -> None:
            if not _raw(conn).execute("DELETE FROM relay_networks WHERE network = ?", (network,)).rowcount:
                raise NotFound("unknown_network", network)
        await self.db.write(job)

    # --- DKIM and settings -----------------------------------------------------
    async def get_dkim_key(self, domain: str) -> DkimKey | None:
        rows = self._point("SELECT domain, selector, private_key, public_key FROM dkim_keys WHERE domain = ?",
                           (domain,))
        if not rows:
            return None
        d, s, priv, pub = rows[0]
        return DkimKey(str(d), str(s), bytes(priv), str(pub))

    async def set_dkim_key(self, key: DkimKey) -> None:
        def job(conn: Connection) -> None:
            _raw(conn).execute("INSERT OR REPLACE INTO dkim_keys (domain, selector, private_key, public_key, created) "
                               "VALUES (?, ?, ?, ?, ?)",
                               (key.domain, key.selector, key.private_key, key.public_key, time.time()))
        await self.db.write(job)

    async def get_setting(self, key: str) -> str | None:
        self._fresh()
        return self._settings.get(key)

    async def set_setting(self, key: str, value: str) -> None:
        def job(conn: Connection) -> None:
            _raw(conn).execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))
        await self.db.write(job)
        self._loaded = -1.0

    # --- fetch accounts ---------------------------------------------------------
    async def list_fetch_accounts(self) -> list[FetchAccount]:
        def job(conn: Connection) -> list[FetchAccount]:
            return [FetchAccount(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), r[8], r[9], r[10],
                                 bool(r[11]), r[12], r[13]) for r in _raw(conn).execute(_FETCH)]
        return await self.db.read(job)

    async def add_fetch_account(self, account: FetchAccount) -> int:
        def job(conn: Connection) -> int:
            raw = _raw(conn)
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
                    "password, interval, keep, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (owner, account.mode, account.protocol, account.host, account.port, account.security,
                     account.verify, account.username, account.password, account.interval, account.keep,
                     time.time()))
            except sqlite3.IntegrityError as exc:
                raise Conflict("fetch_exists", f"{account.username}@{account.host}") from exc
            return int(cur.lastrowid or 0)
        return await self.db.write(job)

    async def remove_fetch_account(self, fetch_id: int) -> None:
        def job(conn: Connection) -> None:
            if not _raw(conn).execute("DELETE FROM fetch_accounts WHERE id = ?", (fetch_id,)).rowcount:
                raise NotFound("unknown_fetch", str(fetch_id))
        await self.db.write(job)

    async def set_fetch_password(self, fetch_id: int, password: str) -> None:
        def job(conn: Connection) -> None:
            _raw(conn).execute("UPDATE fetch_accounts SET password = ? WHERE id = ?", (password, fetch_id))
        await self.db.write(job)

    async def fetch_seen(self, fetch_id: int) -> set[str]:
        return {str(r[0]) for r in self._point("SELECT uid FROM fetch_seen WHERE fetch_id = ?", (fetch_id,))}

    async def forget_fetched(self, fetch_id: int, uids: set[str]) -> None:
        def job(conn: Connection) -> None:
            _raw(conn).executemany("DELETE FROM fetch_seen WHERE fetch_id = ? AND uid = ?",
                                   [(fetch_id, u) for u in uids])
        await self.db.write(job)

    async def fetch_ran(self, fetch_id: int, when: float, error: str) -> None:
        def job(conn: Connection) -> None:
            _raw(conn).execute("UPDATE fetch_accounts SET last_run = ?, last_error = ? WHERE id = ?",
                               (when, error[:500], fetch_id))
        await self.db.write(job)
