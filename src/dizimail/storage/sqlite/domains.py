"""SqliteDomainProfileStore (interfaces/domains.py)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection

from dizimail.model.domains import DomainProfile, Registration
from dizimail.storage.sqlite.db import SqliteDatabase, driver

_PROFILE = "domain, display_name, logo_type, quota_bytes, max_users, self_registration"
_REG = "id, domain, local_part, name, password_hash, created, ip"


def _registration(r: Any) -> Registration:
    return Registration(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), float(r[5]), str(r[6]))


class SqliteDomainProfileStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def get_profile(self, domain: str) -> DomainProfile | None:
        r = self.db.quick().execute(f"SELECT {_PROFILE} FROM domain_profiles WHERE domain = ?", (domain,)).fetchone()
        return None if r is None else DomainProfile(str(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4]), bool(r[5]))

    async def put_profile(self, profile: DomainProfile) -> None:
        def job(conn: Connection) -> None:
            driver(conn).execute(
                f"INSERT INTO domain_profiles ({_PROFILE}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (domain) DO UPDATE SET "
                "display_name = excluded.display_name, quota_bytes = excluded.quota_bytes, "
                "max_users = excluded.max_users, self_registration = excluded.self_registration",
                (profile.domain, profile.display_name, profile.logo_type, profile.quota_bytes, profile.max_users,
                 int(profile.self_registration)))
        await self.db.write(job)

    async def get_logo(self, domain: str) -> tuple[bytes, str] | None:
        r = self.db.quick().execute("SELECT logo, logo_type FROM domain_profiles WHERE domain = ? AND logo IS NOT NULL",
                                    (domain,)).fetchone()
        return None if r is None else (bytes(r[0]), str(r[1]))

    async def set_logo(self, domain: str, data: bytes | None, media_type: str) -> None:
        def job(conn: Connection) -> None:
            driver(conn).execute(
                "INSERT INTO domain_profiles (domain, logo, logo_type) VALUES (?, ?, ?) ON CONFLICT (domain) DO UPDATE "
                "SET logo = excluded.logo, logo_type = excluded.logo_type", (domain, data, media_type if data else ""))
        await self.db.write(job)

    async def remove_profile(self, domain: str) -> None:
        def job(conn: Connection) -> None:
            db = driver(conn)
            db.execute("DELETE FROM domain_profiles WHERE domain = ?", (domain,))
            db.execute("DELETE FROM registrations WHERE domain = ?", (domain,))
        await self.db.write(job)

    async def add_registration(self, domain: str, local_part: str, name: str, password_hash: str, ip: str) -> bool:
        def job(conn: Connection) -> bool:
            return bool(driver(conn).execute(
                "INSERT INTO registrations (domain, local_part, name, password_hash, created, ip) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (domain, local_part) DO NOTHING",
                (domain, local_part, name, password_hash, time.time(), ip)).rowcount)
        return await self.db.write(job)

    async def registrations(self, domain: str | None = None) -> list[Registration]:
        sql = f"SELECT {_REG} FROM registrations" + (" WHERE domain = ?" if domain is not None else "") + " ORDER BY id"
        return [_registration(r) for r in self.db.quick().execute(sql, (domain,) if domain is not None else ())]

    async def take_registration(self, reg_id: int) -> Registration | None:
        def job(conn: Connection) -> Any:
            return driver(conn).execute(f"DELETE FROM registrations WHERE id = ? RETURNING {_REG}", (reg_id,)).fetchone()
        row = await self.db.write(job)
        return None if row is None else _registration(row)

    async def count_registrations(self, *, domain: str | None = None, ip: str | None = None,
                                  since: float = 0.0) -> int:
        where: list[str] = ["created >= ?"]
        args: list[Any] = [since]
        if domain is not None:
            where.append("domain = ?")
            args.append(domain)
        if ip is not None:
            where.append("ip = ?")
            args.append(ip)
        return int(self.db.quick().execute(f"SELECT count(*) FROM registrations WHERE {' AND '.join(where)}",
                                           args).fetchone()[0])
