"""SqliteSieveStore (interfaces/sieve.py)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection

from dizimail.model.sieve import ActiveScript, ScriptInfo
from dizimail.storage.sqlite.db import SqliteDatabase, driver

IDS_AT_ONCE = 500  # account ids in one IN (...) of active_scripts


class SqliteSieveStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def list_scripts(self, account_id: int) -> list[ScriptInfo]:
        rows = self.db.quick().execute(
            "SELECT name, active, length(CAST(content AS BLOB)), updated FROM sieve_scripts WHERE account_id = ? "
            "ORDER BY name", (account_id,))
        return [ScriptInfo(str(r[0]), bool(r[1]), int(r[2]), float(r[3])) for r in rows]

    async def get_script(self, account_id: int, name: str) -> str | None:
        row = self.db.quick().execute("SELECT content FROM sieve_scripts WHERE account_id = ? AND name = ?",
                                      (account_id, name)).fetchone()
        return None if row is None else str(row[0])

    async def put_script(self, account_id: int, name: str, content: str) -> None:
        def job(conn: Connection) -> None:
            driver(conn).execute(
                "INSERT INTO sieve_scripts (account_id, name, content, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (account_id, name) DO UPDATE SET content = excluded.content, "
                "version = version + 1, updated = excluded.updated", (account_id, name, content, time.time()))
        await self.db.write(job)

    async def activate(self, account_id: int, name: str | None) -> bool:
        def job(conn: Connection) -> bool:
            db = driver(conn)
            if name is not None and db.execute("SELECT 1 FROM sieve_scripts WHERE account_id = ? AND name = ?",
                                               (account_id, name)).fetchone() is None:
                return False
            db.execute("UPDATE sieve_scripts SET active = 0, version = version + 1 WHERE account_id = ? AND active = 1",
                       (account_id,))
            if name is not None:
                db.execute("UPDATE sieve_scripts SET active = 1, version = version + 1 WHERE account_id = ? AND name = ?",
                           (account_id, name))
            return True
        return await self.db.write(job)

    async def delete_script(self, account_id: int, name: str) -> bool:
        def job(conn: Connection) -> bool:
            return bool(driver(conn).execute("DELETE FROM sieve_scripts WHERE account_id = ? AND name = ?",
                                             (account_id, name)).rowcount)
        return await self.db.write(job)

    async def rename_script(self, account_id: int, old: str, new: str) -> bool:
        def job(conn: Connection) -> bool:
            return bool(driver(conn).execute(
                "UPDATE sieve_scripts SET name = ?, updated = ? WHERE account_id = ? AND name = ?",
                (new, time.time(), account_id, old)).rowcount)
        return await self.db.write(job)

    async def active_scripts(self, account_ids: list[int]) -> dict[int, ActiveScript]:
        return (await self.delivery_state(account_ids))[0]

    async def delivery_state(self, account_ids: list[int]) -> tuple[dict[int, ActiveScript], dict[int, str]]:
        scripts: dict[int, ActiveScript] = {}
        rules: dict[int, str] = {}
        db = self.db.quick()
        for start in range(0, len(account_ids), IDS_AT_ONCE):
            chunk = account_ids[start:start + IDS_AT_ONCE]
            marks = ", ".join("?" * len(chunk))
            rows: Any = db.execute(  # one look-up for both, per message: the delivery path's cost
                f"SELECT account_id, id, version, NULL FROM sieve_scripts WHERE active = 1 AND account_id IN ({marks}) "
                f"UNION ALL SELECT account_id, NULL, NULL, rules FROM sieve_rules WHERE account_id IN ({marks})",
                chunk + chunk)
            for account_id, script_id, version, text in rows:
                if text is None:
                    scripts[int(account_id)] = ActiveScript(int(script_id), int(version))
                else:
                    rules[int(account_id)] = str(text)
        return scripts, rules

    async def script_text(self, script_id: int) -> str | None:
        row = self.db.quick().execute("SELECT content FROM sieve_scripts WHERE id = ?", (script_id,)).fetchone()
        return None if row is None else str(row[0])

    async def remember(self, account_id: int, key: str, until: float, now: float, refresh: bool) -> bool:
        def job(conn: Connection) -> bool:
            db = driver(conn)
            row = db.execute("SELECT until FROM sieve_seen WHERE account_id = ? AND key = ?", (account_id, key)).fetchone()
            seen = row is not None and float(row[0]) > now
            if not seen or refresh:
                db.execute("INSERT INTO sieve_seen (account_id, key, until) VALUES (?, ?, ?) ON CONFLICT "
                           "(account_id, key) DO UPDATE SET until = excluded.until", (account_id, key, until))
            db.execute("DELETE FROM sieve_seen WHERE rowid IN (SELECT rowid FROM sieve_seen WHERE until < ? LIMIT 100)",
                       (now,))  # what expired, a few at a time
            return seen
        return await self.db.write(job)

    async def get_rules(self, account_id: int) -> str | None:
        row = self.db.quick().execute("SELECT rules FROM sieve_rules WHERE account_id = ?", (account_id,)).fetchone()
        return None if row is None else str(row[0])

    async def put_rules(self, account_id: int, rules: str | None) -> None:
        def job(conn: Connection) -> None:
            db = driver(conn)
            if rules is None:
                db.execute("DELETE FROM sieve_rules WHERE account_id = ?", (account_id,))
            else:
                db.execute("INSERT INTO sieve_rules (account_id, rules, updated) VALUES (?, ?, ?) ON CONFLICT "
                           "(account_id) DO UPDATE SET rules = excluded.rules, updated = excluded.updated",
                           (account_id, rules, time.time()))
        await self.db.write(job)

    async def rules_for(self, account_ids: list[int]) -> dict[int, str]:
        return (await self.delivery_state(account_ids))[1]
