"""SqliteRoutingStore (interfaces/routing.py): routes and relay networks."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection

from dizimail.model.errors import NotFound
from dizimail.model.outbound import Route
from dizimail.storage.sqlite.db import SqliteDatabase, driver

CACHE_SECONDS = 0.5  # routes (and settings) are read on every message; another process's change shows within this


class SqliteRoutingStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        self._routes: dict[str, Route] = {}
        self._loaded = -1.0

    def _fresh(self) -> None:
        now = time.monotonic()
        if now - self._loaded > CACHE_SECONDS:
            self._routes = {r[0]: Route(*r) for r in self._point(
                "SELECT domain, kind, host, port, created FROM routes", ())}
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
            driver(conn).execute("INSERT OR REPLACE INTO routes (domain, kind, host, port, created) VALUES (?, ?, ?, ?, ?)",
                               (route.domain, route.kind, route.host, route.port, time.time()))
        await self.db.write(job)
        self._loaded = -1.0

    async def remove_route(self, domain: str) -> None:
        def job(conn: Connection) -> None:
            if not driver(conn).execute("DELETE FROM routes WHERE domain = ?", (domain,)).rowcount:
                raise NotFound("unknown_route", domain)
        await self.db.write(job)
        self._loaded = -1.0

    # --- relay networks ---------------------------------------------------
    async def list_relay_networks(self) -> list[str]:
        return [str(r[0]) for r in self._point("SELECT network FROM relay_networks ORDER BY network", ())]

    async def add_relay_network(self, network: str) -> None:
        def job(conn: Connection) -> None:
            driver(conn).execute("INSERT OR IGNORE INTO relay_networks (network, created) VALUES (?, ?)",
                               (network, time.time()))
        await self.db.write(job)

    async def remove_relay_network(self, network: str) -> None:
        def job(conn: Connection) -> None:
            if not driver(conn).execute("DELETE FROM relay_networks WHERE network = ?", (network,)).rowcount:
                raise NotFound("unknown_network", network)
        await self.db.write(job)
