"""SqliteListStore (interfaces/lists.py)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from sqlalchemy import Connection

from dizimail.model.errors import Conflict, NotFound
from dizimail.model.lists import DISABLED, ListChange, MailingList, Member, Pending
from dizimail.storage.sqlite.db import SqliteDatabase, driver

_LIST = ("SELECT l.id, l.local_part || '@' || d.name, l.name, l.description, l.policy, l.senders, l.moderators, "
         "l.subscription, l.archive, l.bounce_limit, l.created, "
         "(SELECT count(*) FROM list_members m WHERE m.list_id = l.id AND m.status = 'active') "
         "FROM lists l JOIN domains d ON d.id = l.domain_id")
_MEMBER = "SELECT id, address, status, bounces, last_bounce, added FROM list_members"
_CHANGE_COLUMNS = ("name", "description", "policy", "senders", "moderators", "subscription", "archive",
                   "bounce_limit")


def _list(r: Any) -> MailingList:
    return MailingList(id=r[0], address=r[1], name=r[2], description=r[3], policy=r[4],
                       senders=tuple(json.loads(r[5])), moderators=tuple(json.loads(r[6])), subscription=r[7],
                       archive=r[8], bounce_limit=r[9], created=r[10], members=r[11])


def _member(r: Any) -> Member:
    return Member(id=r[0], address=r[1], status=r[2], bounces=r[3], last_bounce=r[4], added=r[5])


def _split(address: str) -> tuple[str, str]:
    local, _, domain = address.rpartition("@")
    return local, domain


class SqliteListStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def get_list(self, address: str) -> MailingList | None:
        local, domain = _split(address)
        row = self.db.quick().execute(_LIST + " WHERE d.name = ? AND l.local_part = ?", (domain, local)).fetchone()
        return None if row is None else _list(row)

    async def list_lists(self, domain: str | None = None) -> list[MailingList]:
        def job(conn: Connection) -> list[MailingList]:
            where, args = (" WHERE d.name = ?", (domain,)) if domain else ("", ())
            return [_list(r) for r in driver(conn).execute(_LIST + where + " ORDER BY d.name, l.local_part", args)]
        return await self.db.read(job)

    async def create_list(self, mlist: MailingList) -> MailingList:
        local, domain = _split(mlist.address)

        def job(conn: Connection) -> int:
            db = driver(conn)
            row = db.execute("SELECT id FROM domains WHERE name = ?", (domain,)).fetchone()
            if row is None:
                raise NotFound("unknown_domain", domain)
            try:
                return int(db.execute(
                    "INSERT INTO lists (domain_id, local_part, name, description, policy, senders, moderators, "
                    "subscription, archive, bounce_limit, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (row[0], local, mlist.name, mlist.description, mlist.policy, json.dumps(list(mlist.senders)),
                     json.dumps(list(mlist.moderators)), mlist.subscription, mlist.archive, mlist.bounce_limit,
                     mlist.created)).lastrowid or 0)
            except sqlite3.IntegrityError as exc:
                raise Conflict("list_exists", mlist.address) from exc
        list_id = await self.db.write(job)
        return MailingList(**{**mlist.__dict__, "id": list_id})

    async def update_list(self, address: str, change: ListChange) -> bool:
        values = {k: getattr(change, k) for k in _CHANGE_COLUMNS if getattr(change, k) is not None}
        for key in ("senders", "moderators"):
            if key in values:
                values[key] = json.dumps(list(values[key]))
        if not values:
            return await self.get_list(address) is not None
        local, domain = _split(address)

        def job(conn: Connection) -> bool:
            sets = ", ".join(f"{k} = ?" for k in values)
            return bool(driver(conn).execute(
                f"UPDATE lists SET {sets} WHERE local_part = ? AND domain_id = (SELECT id FROM domains WHERE name = ?)",
                (*values.values(), local, domain)).rowcount)
        return await self.db.write(job)

    async def delete_list(self, address: str) -> bool:
        local, domain = _split(address)

        def job(conn: Connection) -> bool:
            db = driver(conn)
            row = db.execute("SELECT l.id FROM lists l JOIN domains d ON d.id = l.domain_id WHERE d.name = ? "
                             "AND l.local_part = ?", (domain, local)).fetchone()
            if row is None:
                return False
            db.execute("DELETE FROM list_pending WHERE list_id = ?", (row[0],))
            db.execute("DELETE FROM list_members WHERE list_id = ?", (row[0],))
            db.execute("DELETE FROM lists WHERE id = ?", (row[0],))
            return True
        return await self.db.write(job)

    async def members(self, list_id: int, *, active_only: bool = False) -> list[Member]:
        def job(conn: Connection) -> list[Member]:
            where = " AND status = 'active'" if active_only else ""
            return [_member(r) for r in driver(conn).execute(
                _MEMBER + " WHERE list_id = ?" + where + " ORDER BY address", (list_id,))]
        return await self.db.read(job)

    async def add_members(self, list_id: int, addresses: list[str], now: float) -> int:
        def job(conn: Connection) -> int:
            db = driver(conn)
            changed = 0
            for address in dict.fromkeys(addresses):
                changed += db.execute(
                    "INSERT INTO list_members (list_id, address, added) VALUES (?, ?, ?) ON CONFLICT (list_id, address) "
                    "DO UPDATE SET status = 'active', bounces = 0, last_bounce = 0 WHERE status != 'active'",
                    (list_id, address, now)).rowcount
            return changed
        return await self.db.write(job)

    async def remove_members(self, list_id: int, addresses: list[str]) -> int:
        def job(conn: Connection) -> int:
            return sum(driver(conn).execute("DELETE FROM list_members WHERE list_id = ? AND address = ?",
                                            (list_id, a)).rowcount for a in dict.fromkeys(addresses))
        return await self.db.write(job)

    async def is_member(self, list_id: int, address: str) -> bool:
        domain = "@" + address.rpartition("@")[2]
        return self.db.quick().execute(
            "SELECT 1 FROM list_members WHERE list_id = ? AND address IN (?, ?) AND status = 'active' LIMIT 1",
            (list_id, address, domain)).fetchone() is not None

    async def get_member(self, member_id: int) -> tuple[int, Member] | None:
        row = self.db.quick().execute(_MEMBER.replace("SELECT ", "SELECT list_id, ", 1) + " WHERE id = ?",
                                      (member_id,)).fetchone()
        return None if row is None else (int(row[0]), _member(row[1:]))

    async def record_bounce(self, member_id: int, now: float, forget_after: float, limit: int) -> Member | None:
        def job(conn: Connection) -> Member | None:
            db = driver(conn)
            row = db.execute(_MEMBER + " WHERE id = ?", (member_id,)).fetchone()
            if row is None:
                return None
            member = _member(row)
            bounces = 1 if now - member.last_bounce > forget_after else member.bounces + 1
            status = DISABLED if bounces >= limit else member.status
            db.execute("UPDATE list_members SET bounces = ?, last_bounce = ?, status = ? WHERE id = ?",
                       (bounces, now, status, member_id))
            return Member(member.id, member.address, status, bounces, now, member.added)
        return await self.db.write(job)

    async def put_pending(self, token: str, pending: Pending) -> bool:
        def job(conn: Connection) -> bool:
            db = driver(conn)
            db.execute("DELETE FROM list_pending WHERE expires < ?", (pending.expires - 10 * 86400,))
            if db.execute("SELECT 1 FROM list_pending WHERE list_id = ? AND action = ? AND address = ? AND "
                          "expires > ?", (pending.list_id, pending.action, pending.address,
                                          pending.expires - 86400)).fetchone():
                return False  # asked within the last day: one confirmation mail, not one per request
            db.execute("DELETE FROM list_pending WHERE list_id = ? AND action = ? AND address = ?",
                       (pending.list_id, pending.action, pending.address))
            db.execute("INSERT INTO list_pending (token, list_id, action, address, expires, extra) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (token, pending.list_id, pending.action, pending.address,
                                                     pending.expires, json.dumps(pending.extra)))
            return True
        return await self.db.write(job)

    async def take_pending(self, token: str, now: float) -> Pending | None:
        def job(conn: Connection) -> Pending | None:
            db = driver(conn)
            row = db.execute("SELECT list_id, action, address, expires, extra FROM list_pending WHERE token = ?",
                             (token,)).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM list_pending WHERE token = ?", (token,))
            return None if row[3] < now else Pending(row[0], row[1], row[2], row[3], json.loads(row[4]))
        return await self.db.write(job)

    async def has_pending(self, token: str, now: float) -> bool:
        return self.db.quick().execute("SELECT 1 FROM list_pending WHERE token = ? AND expires >= ?",
                                       (token, now)).fetchone() is not None


