"""SqliteContactStore (interfaces/contacts.py)."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import Connection

from dizimail.model.contacts import Contact, ContactGroup
from dizimail.model.errors import Conflict
from dizimail.storage.sqlite.db import SqliteDatabase, driver

_COLUMNS = "c.id, c.name, c.email, c.phone, c.org, c.note, (SELECT group_concat(m.group_id) FROM contact_members m " \
           "WHERE m.contact_id = c.id)"


def _contact(row: Any) -> Contact:
    groups = tuple(int(g) for g in str(row[6]).split(",")) if row[6] else ()
    return Contact(int(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]), str(row[5]), groups)


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class SqliteContactStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def list_contacts(self, account_id: int, search: str = "", group_id: int | None = None,
                            limit: int = 10_000) -> list[Contact]:
        def job(conn: Connection) -> list[Contact]:
            sql, args = f"SELECT {_COLUMNS} FROM contacts c WHERE c.account_id = ?", list[object]([account_id])
            if search:
                sql += " AND (c.name LIKE ? ESCAPE '\\' OR c.email LIKE ? ESCAPE '\\')"
                args += [_like(search), _like(search)]
            if group_id is not None:
                sql += " AND c.id IN (SELECT contact_id FROM contact_members WHERE group_id = ?)"
                args.append(group_id)
            sql += " ORDER BY c.name COLLATE NOCASE, c.email LIMIT ?"
            return [_contact(r) for r in driver(conn).execute(sql, (*args, limit))]
        return await self.db.read(job)

    async def count_contacts(self, account_id: int) -> int:
        return int(self.db.quick().execute("SELECT count(*) FROM contacts WHERE account_id = ?",
                                           (account_id,)).fetchone()[0])

    async def put_contact(self, account_id: int, contact: Contact) -> int:
        def job(conn: Connection) -> int:
            db = driver(conn)
            values = (contact.name, contact.phone, contact.org, contact.note, time.time())
            if contact.id:
                try:
                    cur = db.execute("UPDATE contacts SET name = ?, phone = ?, org = ?, note = ?, updated = ?, "
                                     "email = ? WHERE id = ? AND account_id = ?",
                                     (*values, contact.email, contact.id, account_id))
                except sqlite3.IntegrityError:
                    raise Conflict("contact_exists", contact.email) from None
                return contact.id if cur.rowcount else 0
            row = db.execute("INSERT INTO contacts (account_id, name, phone, org, note, updated, email) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, email) DO UPDATE SET "
                             "name = excluded.name, phone = excluded.phone, org = excluded.org, note = excluded.note, "
                             "updated = excluded.updated RETURNING id", (account_id, *values, contact.email)).fetchone()
            return int(row[0])
        return await self.db.write(job)

    async def put_contacts(self, account_id: int, rows: list[tuple[Contact, tuple[str, ...]]], max_contacts: int,
                           max_groups: int) -> int:
        def job(conn: Connection) -> int:
            db = driver(conn)
            count = db.execute("SELECT count(*) FROM contacts WHERE account_id = ?", (account_id,)).fetchone()[0]
            groups = {str(r[1]): int(r[0]) for r in db.execute(
                "SELECT id, name FROM contact_groups WHERE account_id = ?", (account_id,))}
            stored, now = 0, time.time()
            for contact, names in rows:
                known = db.execute("SELECT id FROM contacts WHERE account_id = ? AND email = ?",
                                   (account_id, contact.email)).fetchone()
                if known is None and count >= max_contacts:
                    continue
                contact_id = int(db.execute(
                    "INSERT INTO contacts (account_id, name, phone, org, note, updated, email) VALUES (?, ?, ?, ?, ?, "
                    "?, ?) ON CONFLICT (account_id, email) DO UPDATE SET name = excluded.name, phone = excluded.phone, "
                    "org = excluded.org, note = excluded.note, updated = excluded.updated RETURNING id",
                    (account_id, contact.name, contact.phone, contact.org, contact.note, now, contact.email)
                ).fetchone()[0])
                count += known is None
                stored += 1
                for name in names:
                    if name not in groups and len(groups) < max_groups:
                        groups[name] = int(db.execute("INSERT INTO contact_groups (account_id, name) VALUES (?, ?) "
                                                      "RETURNING id", (account_id, name)).fetchone()[0])
                    if name in groups:
                        db.execute("INSERT OR IGNORE INTO contact_members (group_id, contact_id) VALUES (?, ?)",
                                   (groups[name], contact_id))
            return stored
        return await self.db.write(job)

    async def delete_contact(self, account_id: int, contact_id: int) -> bool:
        def job(conn: Connection) -> bool:
            return bool(driver(conn).execute("DELETE FROM contacts WHERE id = ? AND account_id = ?",
                                             (contact_id, account_id)).rowcount)
        return await self.db.write(job)

    async def list_groups(self, account_id: int) -> list[ContactGroup]:
        def job(conn: Connection) -> list[ContactGroup]:
            rows = driver(conn).execute(
                "SELECT g.id, g.name, (SELECT group_concat(m.contact_id) FROM contact_members m WHERE m.group_id = g.id) "
                "FROM contact_groups g WHERE g.account_id = ? ORDER BY g.name COLLATE NOCASE", (account_id,))
            return [ContactGroup(int(r[0]), str(r[1]), tuple(int(c) for c in str(r[2]).split(",")) if r[2] else ())
                    for r in rows]
        return await self.db.read(job)

    async def put_group(self, account_id: int, group_id: int, name: str) -> int:
        def job(conn: Connection) -> int:
            db = driver(conn)
            try:
                if group_id:
                    cur = db.execute("UPDATE contact_groups SET name = ? WHERE id = ? AND account_id = ?",
                                     (name, group_id, account_id))
                    return group_id if cur.rowcount else 0
                return int(db.execute("INSERT INTO contact_groups (account_id, name) VALUES (?, ?) RETURNING id",
                                      (account_id, name)).fetchone()[0])
            except sqlite3.IntegrityError:
                raise Conflict("group_exists", name) from None
        return await self.db.write(job)

    async def delete_group(self, account_id: int, group_id: int) -> bool:
        def job(conn: Connection) -> bool:
            return bool(driver(conn).execute("DELETE FROM contact_groups WHERE id = ? AND account_id = ?",
                                             (group_id, account_id)).rowcount)
        return await self.db.write(job)

    async def set_member(self, account_id: int, group_id: int, contact_id: int, member: bool) -> bool:
        def job(conn: Connection) -> bool:
            db = driver(conn)
            mine = db.execute("SELECT (SELECT 1 FROM contact_groups WHERE id = ? AND account_id = ?), "
                              "(SELECT 1 FROM contacts WHERE id = ? AND account_id = ?)",
                              (group_id, account_id, contact_id, account_id)).fetchone()
            if not (mine[0] and mine[1]):
                return False
            if member:
                db.execute("INSERT OR IGNORE INTO contact_members (group_id, contact_id) VALUES (?, ?)",
                           (group_id, contact_id))
            else:
                db.execute("DELETE FROM contact_members WHERE group_id = ? AND contact_id = ?", (group_id, contact_id))
            return True
        return await self.db.write(job)

    async def get_prefs(self, account_id: int) -> str | None:
        row = self.db.quick().execute("SELECT data FROM user_prefs WHERE account_id = ?", (account_id,)).fetchone()
        return None if row is None else str(row[0])

    async def put_prefs(self, account_id: int, data: str) -> None:
        def job(conn: Connection) -> None:
            driver(conn).execute("INSERT INTO user_prefs (account_id, data, updated) VALUES (?, ?, ?) ON CONFLICT "
                                 "(account_id) DO UPDATE SET data = excluded.data, updated = excluded.updated",
                                 (account_id, data, time.time()))
        await self.db.write(job)
