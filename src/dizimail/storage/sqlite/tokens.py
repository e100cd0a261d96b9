"""SqliteTokenStore (interfaces/tokens.py)."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Connection

from dizimail.model.tokens import ApiToken, Role
from dizimail.storage.sqlite.db import SqliteDatabase, driver

_COLS = "id, role, subject, domains, label, created, expires, revoked"


def _token(r: Any) -> ApiToken:
    return ApiToken(int(r[0]), Role(r[1]), str(r[2]), tuple(json.loads(r[3])), str(r[4]), float(r[5]), float(r[6]),
                    bool(r[7]))


class SqliteTokenStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def add_token(self, digest: bytes, role: Role, subject: str, domains: tuple[str, ...], label: str,
                        expires: float) -> ApiToken:
        def job(conn: Connection) -> Any:
            cur = driver(conn).execute(
                "INSERT INTO api_tokens (digest, role, subject, domains, label, created, expires) "
                f"VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {_COLS}",
                (digest, role.value, subject, json.dumps(list(domains), ensure_ascii=False), label, time.time(),
                 expires))
            return cur.fetchone()
        return _token(await self.db.write(job))

    async def find_token(self, digest: bytes) -> ApiToken | None:
        row = self.db.quick().execute(f"SELECT {_COLS} FROM api_tokens WHERE digest = ?", (digest,)).fetchone()
        return None if row is None else _token(row)

    async def list_tokens(self) -> list[ApiToken]:
        return [_token(r) for r in self.db.quick().execute(f"SELECT {_COLS} FROM api_tokens ORDER BY id")]

    async def revoke_token(self, token_id: int) -> bool:
        def job(conn: Connection) -> bool:
            return bool(driver(conn).execute("UPDATE api_tokens SET revoked = 1 WHERE id = ?", (token_id,)).rowcount)
        return await self.db.write(job)
