"""SqliteTokenStore and SqliteGrantStore (interfaces/tokens.py)."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Connection

from dizimail.model.tokens import AdminGrant, ApiToken, Role
from dizimail.storage.sqlite.db import SqliteDatabase, driver

_COLS = "id, role, subject, domains, label, created, expires, revoked, kind"


def _token(r: Any) -> ApiToken:
    return ApiToken(int(r[0]), Role(r[1]), str(r[2]), tuple(json.loads(r[3])), str(r[4]), float(r[5]), float(r[6]),
                    bool(r[7]), str(r[8]))


class SqliteTokenStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def add_token(self, digest: bytes, role: Role, subject: str, domains: tuple[str, ...], label: str,
                        expires: float, kind: str = "api") -> ApiToken:
        def job(conn: Connection) -> Any:
            cur = driver(conn).execute(
                "INSERT INTO api_tokens (digest, role, subject, domains, label, created, expires, kind) "
                f"VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {_COLS}",
                (digest, role.value, subject, json.dumps(list(domains), ensure_ascii=False), label, time.time(),
                 expires, kind))
            return cur.fetchone()
        return _token(await self.db.write(job))

    async def find_token(self, digest: bytes) -> ApiToken | None:
        row = self.db.quick().execute(f"SELECT {_COLS} FROM api_tokens WHERE digest = ?", (digest,)).fetchone()
        return None if row is None else _token(row)

    async def list_tokens(self, kind: str = "api") -> list[ApiToken]:
        return [_token(r) for r in self.db.quick().execute(f"SELECT {_COLS} FROM api_tokens WHERE kind = ? ORDER BY id",
                                                          (kind,))]

    async def purge_tokens(self, kind: str, ended_before: float) -> int:
        def job(conn: Connection) -> int:
            return int(driver(conn).execute(
                "DELETE FROM api_tokens WHERE kind = ? AND ((expires > 0 AND expires < ?) OR (revoked = 1 AND created < ?))",
                (kind, ended_before, ended_before)).rowcount)
        return await self.db.write(job)

    async def revoke_subject(self, kind: str, subject: str) -> int:
        def job(conn: Connection) -> int:
            return int(driver(conn).execute(
                "UPDATE api_tokens SET revoked = 1 WHERE kind = ? AND subject = ? AND revoked = 0",
                (kind, subject)).rowcount)
        return await self.db.write(job)

    async def revoke_token(self, token_id: int) -> bool:
        def job(conn: Connection) -> bool:
            return bool(driver(conn).execute("UPDATE api_tokens SET revoked = 1 WHERE id = ?", (token_id,)).rowcount)
        return await self.db.write(job)


def _grant(r: Any) -> AdminGrant:
    return AdminGrant(str(r[0]), Role(r[1]), tuple(json.loads(r[2])), bool(r[3]), float(r[4]))


class SqliteGrantStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def get_grant(self, address: str) -> AdminGrant | None:
        row = self.db.quick().execute("SELECT address, role, domains, totp != '', created FROM admin_grants "
                                      "WHERE address = ?", (address,)).fetchone()
        return None if row is None else _grant(row)

    async def list_grants(self) -> list[AdminGrant]:
        return [_grant(r) for r in self.db.quick().execute(
            "SELECT address, role, domains, totp != '', created FROM admin_grants ORDER BY address")]

    async def put_grant(self, address: str, role: Role, domains: tuple[str, ...]) -> AdminGrant:
        def job(conn: Connection) -> Any:
            return driver(conn).execute(
                "INSERT INTO admin_grants (address, role, domains, totp, created) VALUES (?, ?, ?, '', ?) "
                "ON CONFLICT (address) DO UPDATE SET role = excluded.role, domains = excluded.domains "
                "RETURNING address, role, domains, totp != '', created",
                (address, role.value, json.dumps(list(domains), ensure_ascii=False), time.time())).fetchone()
        return _grant(await self.db.write(job))

    async def remove_grant(self, address: str) -> bool:
        def job(conn: Connection) -> bool:
            return bool(driver(conn).execute("DELETE FROM admin_grants WHERE address = ?", (address,)).rowcount)
        return await self.db.write(job)

    async def grant_totp(self, address: str) -> str:
        row = self.db.quick().execute("SELECT totp FROM admin_grants WHERE address = ?", (address,)).fetchone()
        return "" if row is None else str(row[0])

    async def set_grant_totp(self, address: str, sealed: str) -> bool:
        def job(conn: Connection) -> bool:
            return bool(driver(conn).execute("UPDATE admin_grants SET totp = ? WHERE address = ?",
                                             (sealed, address)).rowcount)
        return await self.db.write(job)
