"""SqliteMetaStore (interfaces/meta.py); the queue store is in queue.py."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from dizimail.interfaces.blob import BlobStore
from dizimail.interfaces.meta import DEFAULT_MAILBOXES
from dizimail.model.errors import Conflict, NotFound, TemporaryFailure
from dizimail.model.types import (
    ACTIVE,
    Account,
    AddressInfo,
    Alias,
    CommitResult,
    Domain,
    IngestRecord,
    QueuedRecipient,
    Status,
)
from dizimail.storage.sqlite.db import SqliteDatabase
from dizimail.storage.sqlite.keys import KEY_COLUMNS, SqliteKeyOps, key_values
from dizimail.storage.sqlite.mailboxes import RowCache, SqliteMailboxOps, release_blobs
from dizimail.storage.sqlite.quarantine import hold, take
from dizimail.storage.sqlite.search import index_document
from dizimail.storage.sqlite.sql import MailboxCache
from dizimail.storage.sqlite.tables import (
    accounts,
    alias_targets,
    aliases,
    domains,
    mailboxes,
    messages,
    subscriptions,
)

_dom = domains.alias("d")

# Hot-path statements, run on the DBAPI connection (SQLAlchemy Core costs ~100 µs a statement).
_SQL_DOMAIN = ("SELECT d.id, d.name, d.status, t.name FROM domains d LEFT JOIN domains t ON t.id = d.alias_of "
               "WHERE d.name = ?")
_SQL_ACCOUNT = ("SELECT a.id, a.name, a.password_hash, a.quota_bytes, a.used_bytes, a.status, d.status, "
                "a.message_count FROM accounts a JOIN domains d ON d.id = a.domain_id "
                "WHERE d.name = ? AND a.local_part = ?")
_SQL_ALIAS = ("SELECT t.target FROM alias_targets t JOIN aliases a ON a.id = t.alias_id "
              "JOIN domains d ON d.id = a.domain_id WHERE d.name = ? AND a.local_part = ? ORDER BY t.target")
_SQL_BOX_FOR_DELIVERY = ("SELECT a.used_bytes, m.id, m.uidnext, m.highestmodseq "
                         "FROM accounts a JOIN mailboxes m ON m.account_id = a.id WHERE a.id = ? AND m.name = ?")
# sort_date: given when the message came with its keys; else taken from a blob that already has them
# (a redelivery), else NULL until the blob gets keys (storage/sqlite/keys.py write_keys).
_SQL_INSERT_MESSAGE = ("INSERT INTO messages (mailbox_id, uid, modseq, flags, internal_date, size, blob_id, prefix, "
                       "queue_id, sort_date) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, coalesce(?10, (SELECT CASE "
                       "WHEN base_subject IS NULL THEN NULL ELSE coalesce(sent, ?5) END FROM blobs WHERE id = ?7)))")
_SQL_BUMP_BOX = "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1 WHERE id = ?"
_SQL_CHARGE_ACCOUNT = ("UPDATE accounts SET used_bytes = used_bytes + ?, message_count = message_count + 1 "
                       "WHERE id = ?")
_SQL_INSERT_QUEUE = ("INSERT INTO queue (id, blob_id, sender, size, created, params, prefix) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)")
_SQL_INSERT_QUEUE_RCPT = ("INSERT INTO queue_recipients (queue_id, address, notify, orcpt, status, attempts, "
                          "next_attempt, last_error, sender, prefix) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?)")
_SQL_REF_BLOB = (f"INSERT INTO blobs (id, size, refcount, envelope, bodystructure, body, indexed, {KEY_COLUMNS}) "
                 f"VALUES (?, ?, ?, ?, ?, ?, ?, {', '.join('?' * len(KEY_COLUMNS.split(', ')))}) "
                 "ON CONFLICT (id) DO UPDATE SET refcount = refcount + ?, zero_since = NULL")
_NO_KEYS = (None,) * len(KEY_COLUMNS.split(", "))
_SQL_MAILBOX = "SELECT id, uidvalidity, uidnext, highestmodseq FROM mailboxes WHERE account_id = ? AND name = ?"
_SQL_MESSAGES = ("SELECT id, uid, modseq, flags, internal_date, size, blob_id, prefix FROM messages "
                 "WHERE mailbox_id = ? ORDER BY uid")


def _split(address: str) -> tuple[str, str]:
    local, _, domain = address.rpartition("@")
    return local.lower(), domain.lower()


def _account_query() -> Any:
    return (select(accounts, domains.c.name.label("domain"), domains.c.status.label("domain_status"))
            .join(domains, domains.c.id == accounts.c.domain_id))


def _account(row: Any) -> Account:
    return Account(id=row.id, address=f"{row.local_part}@{row.domain}", name=row.name,
                   password_hash=row.password_hash, quota_bytes=row.quota_bytes, used_bytes=row.used_bytes,
                   status=Status(row.status), domain_status=Status(row.domain_status), message_count=row.message_count)


def _domain_id(conn: Connection, name: str) -> int:
    row = conn.execute(select(domains.c.id, domains.c.alias_of).where(domains.c.name == name)).one_or_none()
    if row is None:
        raise NotFound("unknown_domain", name)
    if row.alias_of is not None:
        raise Conflict("domain_is_alias", name)
    return int(row.id)


class SqliteMetaStore(SqliteMailboxOps, SqliteKeyOps):
    def __init__(self, db: SqliteDatabase, blob_store: BlobStore) -> None:
        self.db = db
        self.blobs = blob_store
        self.cache = MailboxCache()
        self.rows = RowCache()

    async def _write(self, fn: Callable[[Connection], Any], sync_dirs: set[str] | None = None) -> Any:
        return await self.db.write(fn, sync_dirs)

    # --- domains -------------------------------------------------------
    async def add_domain(self, name: str, alias_of: str | None = None) -> Domain:
        name = name.lower()

        def job(conn: Connection) -> Domain:
            target = _domain_id(conn, alias_of.lower()) if alias_of else None
            try:
                new_id = conn.execute(insert(domains).values(name=name, alias_of=target, status=ACTIVE,
                                                             created=time.time())).inserted_primary_key
            except IntegrityError as exc:
                raise Conflict("domain_exists", name) from exc
            assert new_id is not None
            return Domain(id=int(new_id[0]), name=name, status=ACTIVE, alias_of=alias_of)
        return await self._write(job)  # type: ignore[no-any-return]

    async def get_domain(self, name: str) -> Domain | None:
        return self._domain(self.db.quick(), name.lower())

    @staticmethod
    def _domain(raw: sqlite3.Connection, name: str) -> Domain | None:
        row = raw.execute(_SQL_DOMAIN, (name,)).fetchone()
        return None if row is None else Domain(row[0], row[1], Status(row[2]), row[3])

    async def list_domains(self) -> list[Domain]:
        def job(conn: Connection) -> list[Domain]:
            rows = conn.execute(select(domains.c.id, domains.c.name, domains.c.status, _dom.c.name.label("target"))
                                .outerjoin(_dom, _dom.c.id == domains.c.alias_of).order_by(domains.c.name))
            return [Domain(r.id, r.name, Status(r.status), r.target) for r in rows]
        return await self.db.read(job)

    async def remove_domain(self, name: str) -> None:
        def job(conn: Connection) -> None:
            row = conn.execute(select(domains.c.id).where(domains.c.name == name.lower())).one_or_none()
            if row is None:
                raise NotFound("unknown_domain", name)
            for table in (accounts, aliases):
                if conn.execute(select(func.count()).select_from(table)
                                .where(table.c.domain_id == row.id)).scalar_one():
                    raise Conflict("domain_not_empty", name)
            conn.execute(delete(domains).where(domains.c.id == row.id))
        await self._write(job)

    async def set_domain_status(self, name: str, status: str) -> None:
        def job(conn: Connection) -> None:
            if not conn.execute(update(domains).where(domains.c.name == name.lower())
                                .values(status=status)).rowcount:
                raise NotFound("unknown_domain", name)
        await self._write(job)

    # --- accounts ------------------------------------------------------
    async def add_accounts(self, rows: list[tuple[str, str, str, int]]) -> list[str | None]:
        def job(conn: Connection) -> list[str | None]:
            results: list[str | None] = []
            domain_ids: dict[str, int | str] = {}
            now = time.time()
            for address, password_hash, name, quota in rows:
                local, domain = _split(address)
                if domain not in domain_ids:
                    try:
                        domain_ids[domain] = _domain_id(conn, domain)
                    except (NotFound, Conflict) as exc:
                        domain_ids[domain] = exc.public_key
                did = domain_ids[domain]
                if isinstance(did, str):
                    results.append(did)
                    continue
                if conn.execute(select(aliases.c.id).where(and_(aliases.c.domain_id == did,
                                                                aliases.c.local_part == local))).first():
                    results.append("address_is_alias")
                    continue
                savepoint = conn.begin_nested()
                try:
                    new_id = conn.execute(insert(accounts).values(
                        domain_id=did, local_part=local, password_hash=password_hash, name=name,
                        quota_bytes=quota, used_bytes=0, message_count=0, status=ACTIVE,
                        created=now)).inserted_primary_key
                except IntegrityError:
                    savepoint.rollback()
                    results.append("user_exists")
                    continue
                savepoint.commit()
                assert new_id is not None
                uidvalidity = int(now)
                conn.execute(insert(mailboxes), [
                    {"account_id": new_id[0], "name": mbox, "uidvalidity": uidvalidity, "uidnext": 1,
                     "highestmodseq": 1, "special_use": use} for mbox, use in DEFAULT_MAILBOXES])
                conn.execute(insert(subscriptions), [{"account_id": new_id[0], "name": mbox}
                                                     for mbox, _use in DEFAULT_MAILBOXES])
                results.append(None)
            return results
        return await self._write(job)  # type: ignore[no-any-return]

    async def get_account(self, address: str) -> Account | None:
        return self._account_raw(self.db.quick(), *_split(address))

    @staticmethod
    def _account_raw(raw: sqlite3.Connection, local: str, domain: str) -> Account | None:
        r = raw.execute(_SQL_ACCOUNT, (domain, local)).fetchone()
        return None if r is None else Account(id=r[0], address=f"{local}@{domain}", name=r[1], password_hash=r[2],
                                               quota_bytes=r[3], used_bytes=r[4], status=Status(r[5]), domain_status=Status(r[6]),
                                               message_count=r[7])

    async def lookup(self, address: str) -> AddressInfo:
        local, domain_name = _split(address)
        raw = self.db.quick()
        domain = self._domain(raw, domain_name)
        if domain is None or domain.alias_of:
            return AddressInfo(domain)
        account = self._account_raw(raw, local, domain_name)
        if account is not None:
            return AddressInfo(domain, account)
        return AddressInfo(domain, alias=self._alias_raw(raw, local, domain_name))

    async def list_accounts(self, domain: str | None = None) -> list[Account]:
        def job(conn: Connection) -> list[Account]:
            query = _account_query().order_by(domains.c.name, accounts.c.local_part)
            if domain:
                query = query.where(domains.c.name == domain.lower())
            return [_account(r) for r in conn.execute(query)]
        return await self.db.read(job)

    async def page_accounts(self, domain: str, *, after: str = "", search: str = "", limit: int = 100) -> list[Account]:
        def job(conn: Connection) -> list[Account]:
            query = (_account_query().where(domains.c.name == domain.lower(), accounts.c.local_part > after)
                     .order_by(accounts.c.local_part).limit(limit))
            if search:  # LIKE with its wildcards escaped: the text is matched as typed
                pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                query = query.where(accounts.c.local_part.like(pattern, escape="\\")
                                    | accounts.c.name.like(pattern, escape="\\"))
            return [_account(r) for r in conn.execute(query)]
        return await self.db.read(job)

    async def update_account(self, address: str, *, password_hash: str | None = None,
                             status: str | None = None, quota_bytes: int | None = None,
                             name: str | None = None) -> None:
        values = {k: v for k, v in (("password_hash", password_hash), ("status", status),
                                    ("quota_bytes", quota_bytes), ("name", name)) if v is not None}
        local, domain = _split(address)

        def job(conn: Connection) -> None:
            did = _domain_id(conn, domain)
            if not conn.execute(update(accounts).where(and_(accounts.c.domain_id == did,
                                                            accounts.c.local_part == local))
                                .values(**values)).rowcount:
                raise NotFound("unknown_user", address)
        await self._write(job)

    async def remove_account(self, address: str) -> None:
        local, domain = _split(address)

        def job(conn: Connection) -> None:
            did = _domain_id(conn, domain)
            row = conn.execute(select(accounts.c.id).where(and_(accounts.c.domain_id == did,
                                                                accounts.c.local_part == local))).one_or_none()
            if row is None:
                raise NotFound("unknown_user", address)
            boxes = select(mailboxes.c.id).where(mailboxes.c.account_id == row.id).scalar_subquery()
            blob_ids = [r.blob_id for r in conn.execute(select(messages.c.blob_id)
                                                        .where(messages.c.mailbox_id.in_(boxes)))]
            conn.execute(delete(accounts).where(accounts.c.id == row.id))
            release_blobs(conn, blob_ids)
        await self._write(job)

    # --- aliases -------------------------------------------------------
    async def add_alias(self, address: str, targets: list[str]) -> None:
        local, domain = _split(address)

        def job(conn: Connection) -> None:
            did = _domain_id(conn, domain)
            if conn.execute(select(accounts.c.id).where(and_(accounts.c.domain_id == did,
                                                             accounts.c.local_part == local))).first():
                raise Conflict("address_is_user", address)
            row = conn.execute(select(aliases.c.id).where(and_(aliases.c.domain_id == did,
                                                               aliases.c.local_part == local))).one_or_none()
            alias_id = row.id if row else conn.execute(insert(aliases).values(
                domain_id=did, local_part=local)).inserted_primary_key[0]  # type: ignore[index]
            for target in targets:
                conn.execute(sqlite_insert(alias_targets).values(alias_id=alias_id, target=target.lower())
                             .on_conflict_do_nothing())
        await self._write(job)

    async def get_alias(self, address: str) -> Alias | None:
        return self._alias_raw(self.db.quick(), *_split(address))

    @staticmethod
    def _alias_raw(raw: sqlite3.Connection, local: str, domain: str) -> Alias | None:
        targets = [r[0] for r in raw.execute(_SQL_ALIAS, (domain, local))]
        return Alias(f"{local}@{domain}", tuple(targets)) if targets else None

    async def list_aliases(self, domain: str | None = None) -> list[Alias]:
        def job(conn: Connection) -> list[Alias]:
            query = (select(aliases.c.local_part, domains.c.name, alias_targets.c.target)
                     .join(domains, domains.c.id == aliases.c.domain_id)
                     .join(alias_targets, alias_targets.c.alias_id == aliases.c.id)
                     .order_by(domains.c.name, aliases.c.local_part, alias_targets.c.target))
            if domain:
                query = query.where(domains.c.name == domain.lower())
            grouped: dict[str, list[str]] = {}
            for r in conn.execute(query):
                grouped.setdefault(f"{r.local_part}@{r.name}", []).append(r.target)
            return [Alias(a, tuple(t)) for a, t in grouped.items()]
        return await self.db.read(job)

    async def remove_alias(self, address: str) -> None:
        local, domain = _split(address)

        def job(conn: Connection) -> None:
            did = _domain_id(conn, domain)
            if not conn.execute(delete(aliases).where(and_(aliases.c.domain_id == did,
                                                           aliases.c.local_part == local))).rowcount:
                raise NotFound("unknown_alias", address)
        await self._write(job)

    # --- the mail path -------------------------------------------------
    async def commit_ingest(self, record: IngestRecord) -> CommitResult:
        blob = record.blob
        sync = {blob.directory} if blob.directory else set()

        def job(conn: Connection) -> CommitResult:
            # Runs in the writer thread, serialised with blob garbage collection: if the bytes
            # vanished since they were written, refuse (the client retries) rather than
            # acknowledge a message that has no body. The hot path uses the DBAPI cursor
            # directly, inside the group transaction that SQLAlchemy opened.
            if not self.blobs.exists(blob.id):
                raise TemporaryFailure(f"blob {blob.id} vanished before commit")
            cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            if record.fetched is not None and cur.execute(
                    "SELECT 1 FROM fetch_seen WHERE fetch_id = ? AND uid = ?", record.fetched).fetchone():
                return CommitResult(delivered=(), refused=())  # another fetch pass committed it already
            meta = record.meta
            keys = meta.sort if meta is not None else None
            delivered: list[int] = []
            boxes: list[int] = []
            uids: list[int] = []
            refused: list[str] = []
            fallbacks: list[QueuedRecipient] = []
            for d in record.deliveries:
                size = len(d.prefix) + blob.size
                row = cur.execute(_SQL_BOX_FOR_DELIVERY, (d.account_id, d.mailbox)).fetchone()
                if row is None:
                    raise TemporaryFailure(f"account {d.account_id} or its {d.mailbox} vanished during delivery")
                used, box_id, uidnext, modseq = row
                if d.limit is not None and used + size > d.limit:  # the caller's condition, honoured atomically
                    refused.append(d.address)
                    if d.fallback is not None:
                        fallbacks.append(d.fallback)
                    continue
                when = record.received_at if d.internal_date is None else d.internal_date
                sort_date = None if keys is None else keys.sent if keys.sent is not None else when
                cur.execute(_SQL_INSERT_MESSAGE, (box_id, uidnext, modseq + 1, " ".join(d.flags), when,
                                                  size, blob.id, d.prefix, record.queue_id, sort_date))
                cur.execute(_SQL_BUMP_BOX, (box_id,))
                cur.execute(_SQL_CHARGE_ACCOUNT, (size, d.account_id))
                delivered.append(d.account_id)
                boxes.append(box_id)
                uids.append(uidnext)
            # Fallbacks go to the queue only beside something else of the message: when every delivery was
            # refused and nothing else is queued, nothing at all is written.
            pending = list(record.queued) + (fallbacks if delivered or record.queued else [])
            refs = len(delivered) + (1 if pending else 0) + (1 if record.quarantine is not None else 0)
            if not refs:  # nothing stored, nothing queued: write nothing at all
                raise _NothingStored(CommitResult(delivered=(), refused=tuple(refused)))
            if pending:
                cur.execute(_SQL_INSERT_QUEUE, (record.queue_id, blob.id, record.sender, blob.size,
                                                record.received_at, json.dumps(record.params), record.queue_prefix))
                cur.executemany(_SQL_INSERT_QUEUE_RCPT, [
                    (record.queue_id, r.address, r.notify, r.orcpt, r.status, r.next_attempt or record.received_at,
                     r.last_error, r.sender, r.prefix or None) for r in pending])
            held = hold(cur, record.quarantine) if record.quarantine is not None else 0
            if record.fetched is not None:
                cur.execute("INSERT OR IGNORE INTO fetch_seen (fetch_id, uid, created) VALUES (?, ?, ?)",
                            (*record.fetched, record.received_at))
            columns = key_values(keys) if keys is not None else _NO_KEYS
            cur.execute(_SQL_REF_BLOB, (blob.id, blob.size, refs, meta and meta.envelope, meta and meta.bodystructure,
                                        meta and meta.body, 0, *columns, refs))
            if meta is not None and meta.search is not None:
                index_document(cur.connection, blob.id, meta.search)
            if record.released is not None and take(conn, record.released) is None:  # released meanwhile
                raise NotFound("unknown_quarantine_id", str(record.released))
            return CommitResult(delivered=tuple(delivered), refused=tuple(refused), mailboxes=tuple(boxes),
                                uids=tuple(uids), quarantined=held)
        try:
            return await self._write(job, sync)  # type: ignore[no-any-return]
        except _NothingStored as nothing:
            return nothing.result


class _NothingStored(Exception):
    """Every delivery was refused by its limit and nothing was queued: the job's savepoint is rolled back."""

    def __init__(self, result: CommitResult) -> None:
        super().__init__("nothing stored")
        self.result = result
