"""SqliteSearchIndex: FTS5 trigram index over per-blob documents (interfaces/search.py).

Terms of three characters or more go through the trigram index when the mailbox is large;
shorter ones (two-character Chinese words such as 电厂 are common), and any term in a small
mailbox, are matched with instr() on the stored text of that mailbox's messages only. Text is case-folded at indexing time and the term here, so both
paths are case-insensitive for every script.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any, cast

from dizimail.model.types import SearchDoc
from dizimail.storage.sqlite.db import SqliteDatabase

COLUMNS = {"subject": "subject", "from": "addr_from", "to": "addr_to", "cc": "addr_cc", "bcc": "addr_bcc",
           "headers": "headers", "body": "body"}
SCAN_BELOW = 1000
_JOIN = "FROM messages m JOIN search_docs d ON d.blob_id = m.blob_id WHERE m.mailbox_id = ?"


def index_document(raw: sqlite3.Connection, blob_id: str, doc: SearchDoc) -> None:
    """Add a blob's document (inside the caller's transaction); a blob is indexed once."""
    if raw.execute("SELECT 1 FROM search_docs WHERE blob_id = ?", (blob_id,)).fetchone():
        return
    values = (doc.subject, doc.addr_from, doc.addr_to, doc.addr_cc, doc.addr_bcc, doc.headers, doc.body)
    cur = raw.execute("INSERT INTO search_docs (blob_id, subject, addr_from, addr_to, addr_cc, addr_bcc, headers, "
                      "body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (blob_id, *values))
    raw.execute("INSERT INTO search_fts (rowid, subject, addr_from, addr_to, addr_cc, addr_bcc, headers, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (cur.lastrowid, *values))


def drop_documents(raw: sqlite3.Connection, blob_ids: list[str]) -> None:
    """Forget the documents of blobs that lost their last reference."""
    for blob_id in blob_ids:
        row = raw.execute("SELECT id, subject, addr_from, addr_to, addr_cc, addr_bcc, headers, body "
                          "FROM search_docs WHERE blob_id = ?", (blob_id,)).fetchone()
        if row is None:
            continue
        raw.execute("INSERT INTO search_fts (search_fts, rowid, subject, addr_from, addr_to, addr_cc, addr_bcc, "
                    "headers, body) VALUES ('delete', ?, ?, ?, ?, ?, ?, ?, ?)", row)
        raw.execute("DELETE FROM search_docs WHERE id = ?", (row[0],))


def _phrase(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


FULL_CHECK = 60.0  # seconds between looks at every blob row (the regular look starts after the last row seen)
# Blobs that some message in a mailbox references and that have no search document: queue-only
# blobs (mail relayed out, never stored here) are never indexed.
_SQL_PENDING = ("SELECT b.rowid, b.id FROM blobs b WHERE b.rowid > ? AND b.rowid <= ? AND b.refcount > 0 "
                "AND NOT EXISTS (SELECT 1 FROM search_docs d WHERE d.blob_id = b.id) "
                "AND EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = b.id) ORDER BY b.rowid LIMIT ?")


class SqliteSearchIndex:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        self._cursor = 0  # blob rows up to this rowid have been looked at
        self._last_full = time.monotonic()

    async def search(self, mailbox_id: int, field: str, term: str) -> set[int]:
        term = term.casefold()
        columns = ["headers", "body"] if field == "text" else [COLUMNS[field]]
        if not term:
            return await self._all(mailbox_id)
        raw = self.db.quick()
        count = raw.execute("SELECT count(*) FROM messages WHERE mailbox_id = ?", (mailbox_id,)).fetchone()[0]
        # The index pays off when the mailbox is large; a small one is cheaper to scan than the
        # index's hits across every mailbox of the system (a common word is in thousands of them).
        if len(term) >= 3 and count > SCAN_BELOW:
            match = " OR ".join(f"{c} : {_phrase(term)}" for c in columns)
            rows = raw.execute(f"SELECT m.uid {_JOIN} AND d.id IN (SELECT rowid FROM search_fts WHERE search_fts "
                               f"MATCH ?)", (mailbox_id, match))
        else:
            cond = " OR ".join(f"instr(d.{c}, ?) > 0" for c in columns)
            rows = raw.execute(f"SELECT m.uid {_JOIN} AND ({cond})", (mailbox_id, *[term] * len(columns)))
        return {r[0] for r in rows}

    async def _all(self, mailbox_id: int) -> set[int]:
        return {r[0] for r in self.db.quick().execute(f"SELECT m.uid {_JOIN}", (mailbox_id,))}

    async def pending(self, limit: int) -> list[str]:
        """Blobs in mailboxes without a search document. Each look starts after the last blob row
        it saw, so a look costs what was added since; every FULL_CHECK seconds one look (in the
        read pool) goes over every row, for the blobs that gained their first mailbox message
        after their row was seen (a retried delivery, identical content arriving again) and rows
        written over a reused rowid."""
        now = time.monotonic()
        full = now - self._last_full >= FULL_CHECK
        start = 0 if full else self._cursor

        def look(raw: sqlite3.Connection) -> list[tuple[int, str]]:
            newest = raw.execute("SELECT max(rowid) FROM blobs").fetchone()[0] or 0
            rows: list[tuple[int, str]] = raw.execute(_SQL_PENDING, (start, newest, limit)).fetchall()
            if len(rows) < limit:  # looked at everything up to the newest row
                self._cursor = max(self._cursor, newest)
                if full:
                    self._last_full = now
            elif not full:  # a full look that filled its batch is repeated at the next call
                self._cursor = rows[-1][0]
            return rows
        if full:
            rows = await self.db.read(lambda conn: look(cast(sqlite3.Connection, conn.connection.driver_connection)))
        else:
            rows = look(self.db.quick())
        return [r[1] for r in rows]

    async def add(self, documents: list[tuple[str, SearchDoc]]) -> None:
        def job(conn: Any) -> None:
            raw = conn.connection.driver_connection
            for blob_id, doc in documents:
                if raw.execute("SELECT 1 FROM blobs WHERE id = ?", (blob_id,)).fetchone():
                    index_document(raw, blob_id, doc)
        await self.db.write(job)

    async def unindexed(self, mailbox_id: int) -> set[int]:
        rows = self.db.quick().execute(
            "SELECT m.uid FROM messages m LEFT JOIN search_docs d ON d.blob_id = m.blob_id "
            "WHERE m.mailbox_id = ? AND d.id IS NULL", (mailbox_id,))
        return {r[0] for r in rows}
