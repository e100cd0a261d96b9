"""SqliteSettingsStore (interfaces/settings.py) and SqliteDkimKeyStore (interfaces/keys.py)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection

from dizimail.model.outbound import DkimKey
from dizimail.storage.sqlite.db import SqliteDatabase, driver
from dizimail.storage.sqlite.routing import CACHE_SECONDS


class SqliteSettingsStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        self._settings: dict[str, str] = {}
        self._loaded = -1.0

    def _fresh(self) -> None:
        now = time.monotonic()
        if now - self._loaded > CACHE_SECONDS:
            self._settings = {str(k): str(v) for k, v in self.db.quick().execute("SELECT key, value FROM settings")}
            self._loaded = now

    async def get_setting(self, key: str) -> str | None:
        self._fresh()
        return self._settings.get(key)

    async def set_setting(self, key: str, value: str) -> None:
        def job(conn: Connection) -> None:
            driver(conn).execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))
        await self.db.write(job)
        self._loaded = -1.0


class SqliteDkimKeyStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    def _point(self, sql: str, args: tuple[str, ...]) -> list[Any]:
        return self.db.quick().execute(sql, args).fetchall()

    async def get_dkim_key(self, domain: str) -> DkimKey | None:
        rows = self._point("SELECT domain, selector, private_key, public_key FROM dkim_keys WHERE domain = ?",
                           (domain,))
        if not rows:
            return None
        d, s, priv, pub = rows[0]
        return DkimKey(str(d), str(s), bytes(priv), str(pub))

    async def set_dkim_key(self, key: DkimKey) -> None:
        def job(conn: Connection) -> None:
            driver(conn).execute("INSERT OR REPLACE INTO dkim_keys (domain, selector, private_key, public_key, created) "
                               "VALUES (?, ?, ?, ?, ?)",
                               (key.domain, key.selector, key.private_key, key.public_key, time.time()))
        await self.db.write(job)
