"""SqliteSearchIndex: FTS5 trigram index over per-blob documents (interfaces/search.py).

Terms of three characters or more go through the trigram index when the mailbox is large;
shorter ones (two-character Chinese words such as 电厂 are common), and any term in a small
mailbox, are matched with instr() on the stored text of that mailbox's messages only. Text is
case-folded at indexing time and the term here, so both paths are case-insensitive for every
script. A large mailbox is searched in the read pool, never on the event loop.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any, cast

from dizimail.model.types import SearchDoc
from dizimail.storage.sqlite.db import SqliteDatabase
from dizimail.storage.sqlite.sql import UNINDEXED, read_mailbox

COLUMNS = {"subject": "subject", "from": "addr_from", "to": "addr_to", "cc": "addr_cc", "bcc": "addr_bcc",
           "headers": "headers", "body": "body"}
SCAN_BELOW = 1000  # mailboxes up to this size are scanned with instr(); larger ones use the trigram index
HITS_PER_MESSAGE = 10  # index hits per message of the mailbox beyond which scanning the mailbox is cheaper
_JOIN = "FROM messages m JOIN search_docs d ON d.blob_id = m.blob_id WHERE m.mailbox_id = ?"


def index_document(raw: sqlite3.Connection, blob_id: str, doc: SearchDoc) -> None:
    """Add a blob's document (inside the caller's transaction); a blob is indexed once."""
    if not raw.execute("SELECT 1 FROM search_docs WHERE blob_id = ?", (blob_id,)).fetchone():
        values = (doc.subject, doc.addr_from, doc.addr_to, doc.addr_cc, doc.addr_bcc, doc.headers, doc.body)
        cur = raw.execute("INSERT INTO search_docs (blob_id, subject, addr_from, addr_to, addr_cc, addr_bcc, "
                          "headers, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (blob_id, *values))
        raw.execute("INSERT INTO search_fts (rowid, subject, addr_from, addr_to, addr_cc, addr_bcc, headers, body) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (cur.lastrowid, *values))
    raw.execute("UPDATE blobs SET indexed = 1 WHERE id = ? AND indexed = 0", (blob_id,))


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


# The trigram index's hits for the term (across every mailbox: the index is per blob), joined from
# the hits to this mailbox's messages. Driven from the hits, never from the mailbox's messages: with
# "d.id IN (SELECT rowid ... MATCH ?)" SQLite probed every hit for every message (77 s for a common
# word in 20,000 messages). The first row is how many hits there were, up to the limit ?3.
_SQL_FTS = ("WITH hits(id) AS MATERIALIZED (SELECT rowid FROM search_fts WHERE search_fts MATCH ?2 LIMIT ?3) "
            "SELECT count(*) FROM hits UNION ALL "
            "SELECT m.uid FROM hits CROSS JOIN search_docs d ON d.id = hits.id "
            "CROSS JOIN messages m INDEXED BY ix_messages_blob ON m.blob_id = d.blob_id WHERE m.mailbox_id = ?1")


def _fts(raw: sqlite3.Connection, mailbox_id: int, columns: list[str], term: str, limit: int) -> set[int] | None:
    """The mailbox's messages with ``term`` in one of ``columns``, through the trigram index; None
    when the term has more than ``limit`` hits in the whole index (a common word in a system of
    many mailboxes: scanning this mailbox's text costs less)."""
    match = " OR ".join(f"{c} : {_phrase(term)}" for c in columns)
    rows = raw.execute(_SQL_FTS, (mailbox_id, match, limit))
    (hits,) = next(rows)
    if hits >= limit:
        return None
    return {r[0] for r in rows}


SQL_UNINDEXED = (f"SELECT DISTINCT b.id FROM blobs b CROSS JOIN messages m INDEXED BY ix_messages_blob "
                 f"ON m.blob_id = b.id WHERE b.{UNINDEXED} AND m.mailbox_id = ?")
LONG_TERM = 64  # characters: a longer term is looked for with dz_contains (db.py), linear, not instr()


def _has(column: str, term: str, param: str = "?") -> str:
    """SQL for "``term`` is in ``column``": instr() costs term x text, fine for a word or a phrase."""
    return f"instr({column}, {param}) > 0" if len(term) <= LONG_TERM else f"dz_contains({column}, {param})"


def _sql_header_candidates(term: str) -> str:
    return ("SELECT m.uid, d.headers, m.prefix FROM messages m JOIN search_docs d ON d.blob_id = m.blob_id "
            f"WHERE m.mailbox_id = ?1 AND ({_has('d.headers', term, '?2')} "
            "OR instr(lower(CAST(m.prefix AS TEXT)), ?3) > 0 "
            "OR substr(lower(CAST(m.prefix AS TEXT)), 1, length(?4)) = ?4)")
FULL_CHECK = 60.0  # seconds between looks at every blob row (the regular look starts after the last row seen)
# Blobs that some message in a mailbox references and that have no search document: queue-only
# blobs (mail relayed out, never stored here) are never indexed.
_SQL_PENDING = ("SELECT b.rowid, b.id FROM blobs b WHERE b.rowid > ? AND b.rowid <= ? AND b.refcount > 0 "
                "AND b.indexed = 0 "
                "AND EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = b.id) ORDER BY b.rowid LIMIT ?")


class SqliteSearchIndex:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        self._cursor = 0  # blob rows up to this rowid have been looked at
        self._last_full = time.monotonic()

    async def search(self, mailbox_id: int, field: str, term: str) -> set[int]:
        term = term.casefold()
        columns = ["headers", "body"] if field == "text" else [COLUMNS[field]]

        def run(raw: sqlite3.Connection) -> set[int]:
            if not term:
                return {r[0] for r in raw.execute(f"SELECT m.uid {_JOIN}", (mailbox_id,))}
            if len(term) >= 3:
                size = raw.execute("SELECT uidnext - 1 FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone()
                if size is not None and size[0] > SCAN_BELOW:
                    found = _fts(raw, mailbox_id, columns, term, size[0] * HITS_PER_MESSAGE + 1000)
                    if found is not None:
                        return found
            cond = " OR ".join(_has(f"d.{c}", term) for c in columns)
            return {r[0] for r in raw.execute(f"SELECT m.uid {_JOIN} AND ({cond})", (mailbox_id, *[term] * len(columns)))}
        return await read_mailbox(self.db, mailbox_id, run)

    async def search_header(self, mailbox_id: int, name: str, term: str) -> set[int]:
        """Fields the document keeps as ``name: value`` lines; the per-message trace fields (the
        row's prefix: Return-Path, Delivered-To) are fields of the message too. instr() finds the
        candidates (the term in the document, or a trace field of that name: names are ASCII),
        Python checks that the term is inside a value of that field."""
        name, term = name.casefold(), term.casefold()
        label = f"{name}: "

        def has(lines: list[str]) -> bool:
            return any(line.startswith(label) and term in line[len(label):] for line in lines)

        def run(raw: sqlite3.Connection) -> set[int]:
            rows = raw.execute(_sql_header_candidates(term or label), (mailbox_id, term or label, f"\n{name}:", f"{name}:"))
            return {uid for uid, headers, prefix in rows
                    if has(headers.splitlines()) or has(bytes(prefix).decode("utf-8", "replace").casefold().splitlines())}
        return await read_mailbox(self.db, mailbox_id, run)

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

    async def unindexed(self, mailbox_id: int) -> list[str]:
        return [r[0] for r in self.db.quick().execute(SQL_UNINDEXED, (mailbox_id,))]
