"""SqliteBayesStore (interfaces/bayes.py): the content filter's token counts."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence

from sqlalchemy import Connection

from dizimail.model.spam import SpamSetting
from dizimail.storage.sqlite.db import SqliteDatabase, driver

SQL_AWL_EXPIRE = "DELETE FROM awl WHERE updated < ?"  # through ix_awl_updated: no scan of the table per sweep


class SqliteBayesStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def load_model(self, name: str) -> tuple[int, int, dict[str, list[int]], int]:
        def job(conn: Connection) -> tuple[int, int, dict[str, list[int]], int]:  # a scan: the read pool
            cursor = driver(conn)
            row = cursor.execute("SELECT nspam, nham, version FROM bayes_models WHERE name = ?", (name,)).fetchone()
            if row is None:
                return 0, 0, {}, 0
            tokens = {str(t): [int(s), int(h)] for t, s, h in cursor.execute(
                "SELECT token, spam, ham FROM bayes_tokens WHERE model = ?", (name,))}
            return int(row[0]), int(row[1]), tokens, int(row[2])
        return await self.db.read(job)

    async def model_version(self, name: str) -> int:
        row = self.db.quick().execute("SELECT version FROM bayes_models WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    async def model_counts(self, name: str) -> tuple[int, int, int]:
        row = self.db.quick().execute("SELECT nspam, nham, version FROM bayes_models WHERE name = ?", (name,)).fetchone()
        return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)

    async def apply(self, name: str, nspam: int, nham: int, tokens: Mapping[str, tuple[int, int]]) -> int:
        items = [(name, token, ds, dh) for token, (ds, dh) in tokens.items() if ds or dh]

        def job(conn: Connection) -> int:
            cursor = driver(conn)
            # Deltas go in as they are (an upsert's "excluded" row is what was inserted); anything that went
            # below zero (unlearning what was never learnt) is then clamped, and tokens at 0/0 removed.
            cursor.execute("INSERT INTO bayes_models (name, nspam, nham, version) VALUES (?, ?, ?, 1) "
                           "ON CONFLICT (name) DO UPDATE SET nspam = nspam + excluded.nspam, "
                           "nham = nham + excluded.nham, version = version + 1", (name, nspam, nham))
            cursor.execute("UPDATE bayes_models SET nspam = max(nspam, 0), nham = max(nham, 0) WHERE name = ?", (name,))
            cursor.executemany(
                "INSERT INTO bayes_tokens (model, token, spam, ham) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (model, token) DO UPDATE SET spam = spam + excluded.spam, ham = ham + excluded.ham", items)
            batch = json.dumps([t for _, t, _, _ in items])
            cursor.execute("UPDATE bayes_tokens SET spam = max(spam, 0), ham = max(ham, 0) WHERE model = ? AND "
                           "token IN (SELECT value FROM json_each(?)) AND (spam < 0 OR ham < 0)", (name, batch))
            cursor.execute("DELETE FROM bayes_tokens WHERE model = ? AND token IN (SELECT value FROM json_each(?)) "
                           "AND spam = 0 AND ham = 0", (name, batch))
            return int(cursor.execute("SELECT version FROM bayes_models WHERE name = ?", (name,)).fetchone()[0])
        return await self.db.write(job)

    async def learned_as(self, name: str, blob_id: str) -> bool | None:
        row = self.db.quick().execute("SELECT spam FROM bayes_learned WHERE model = ? AND blob_id = ?",
                                      (name, blob_id)).fetchone()
        return None if row is None else bool(row[0])

    async def mark_learned(self, name: str, blob_id: str, spam: bool) -> None:
        def job(conn: Connection) -> None:
            driver(conn).execute("INSERT OR REPLACE INTO bayes_learned (model, blob_id, spam) VALUES (?, ?, ?)",
                                 (name, blob_id, int(spam)))
        await self.db.write(job)


class SqliteWhitelistStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def awl_get(self, sender: str, domains: Sequence[str]) -> dict[str, tuple[int, bool]]:
        out = {}
        for domain in dict.fromkeys(domains):
            row = self.db.quick().execute("SELECT clean, written FROM awl WHERE sender = ? AND domain = ?",
                                          (sender, domain)).fetchone()
            if row is not None:
                out[domain] = (int(row[0]), bool(row[1]))
        return out

    async def awl_add(self, pairs: Sequence[tuple[str, str]], clean: int = 0, written: bool = False) -> None:
        now = time.time()

        def job(conn: Connection) -> None:
            driver(conn).executemany(
                "INSERT INTO awl (sender, domain, clean, written, updated) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (sender, domain) DO UPDATE SET clean = clean + excluded.clean, "
                "written = max(written, excluded.written), updated = excluded.updated",
                [(s, d, clean, int(written), now) for s, d in dict.fromkeys(pairs)])
        await self.db.write(job)

    async def awl_remove(self, pairs: Sequence[tuple[str, str]]) -> int:
        def job(conn: Connection) -> int:
            cursor = driver(conn)
            return sum(cursor.execute("DELETE FROM awl WHERE sender = ? AND domain = ?", pair).rowcount
                       for pair in dict.fromkeys(pairs))
        return await self.db.write(job)

    async def awl_expire(self, before: float) -> int:
        def job(conn: Connection) -> int:
            return int(driver(conn).execute(SQL_AWL_EXPIRE, (before,)).rowcount)
        return await self.db.write(job)


class SqliteSpamSettingsStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def list_spam_settings(self) -> list[SpamSetting]:
        def job(conn: Connection) -> list[SpamSetting]:
            return [SpamSetting(r[0], r[1], r[2], r[3], None if r[4] is None else bool(r[4]), r[5])
                    for r in driver(conn).execute("SELECT scope, tag_at, junk_at, reject_at, personal, updated "
                                                  "FROM spam_settings ORDER BY scope")]
        return await self.db.read(job)

    async def spam_settings_version(self) -> tuple[int, float]:
        count, latest = self.db.quick().execute("SELECT count(*), coalesce(max(updated), 0) FROM spam_settings"
                                                ).fetchone()
        return int(count), float(latest)

    async def put_spam_setting(self, setting: SpamSetting) -> None:
        def job(conn: Connection) -> None:
            driver(conn).execute(
                "INSERT OR REPLACE INTO spam_settings (scope, tag_at, junk_at, reject_at, personal, updated) "
                "VALUES (?, ?, ?, ?, ?, ?)", (setting.scope, setting.tag_at, setting.junk_at, setting.reject_at,
                                              None if setting.personal is None else int(setting.personal),
                                              setting.updated or time.time()))
        await self.db.write(job)

    async def remove_spam_setting(self, scope: str) -> bool:
        def job(conn: Connection) -> bool:
            return bool(driver(conn).execute("DELETE FROM spam_settings WHERE scope = ?", (scope,)).rowcount)
        return bool(await self.db.write(job))
