"""SqliteMetaStore and SqliteQueueStore (see interfaces/meta.py and interfaces/queue.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from dizimail.interfaces.blob import BlobStore
from dizimail.interfaces.meta import DEFAULT_MAILBOXES
from dizimail.model.errors import Conflict, NotFound, QuotaExceeded, TemporaryFailure
from dizimail.model.types import (
    ACTIVE,
    Account,
    Alias,
    CommitResult,
    Domain,
    IngestRecord,
    MailboxInfo,
    MessageEntry,
    QueuedRecipient,
    QueueEntry,
)
from dizimail.storage.sqlite.db import SqliteDatabase
from dizimail.storage.sqlite.tables import (
    accounts,
    alias_targets,
    aliases,
    blobs,
    domains,
    mailboxes,
    messages,
    queue,
    queue_recipients,
)

_dom = domains.alias("d")


def _split(address: str) -> tuple[str, str]:
    local, _, domain = address.rpartition("@")
    return local.lower(), domain.lower()


def _account_query() -> Any:
    return (select(accounts, domains.c.name.label("domain"), domains.c.status.label("domain_status"))
            .join(domains, domains.c.id == accounts.c.domain_id))


def _account(row: Any) -> Account:
    return Account(id=row.id, address=f"{row.local_part}@{row.domain}", name=row.name,
                   password_hash=row.password_hash, quota_bytes=row.quota_bytes, used_bytes=row.used_bytes,
                   status=row.status, domain_status=row.domain_status, message_count=row.message_count)


def _domain_id(conn: Connection, name: str) -> int:
    row = conn.execute(select(domains.c.id, domains.c.alias_of).where(domains.c.name == name)).one_or_none()
    if row is None:
        raise NotFound("unknown_domain", name)
    if row.alias_of is not None:
        raise Conflict("domain_is_alias", name)
    return int(row.id)


class SqliteMetaStore:
    def __init__(self, db: SqliteDatabase, blob_store: BlobStore) -> None:
        self.db = db
        self.blobs = blob_store

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
        def job(conn: Connection) -> Domain | None:
            row = conn.execute(select(domains.c.id, domains.c.name, domains.c.status, _dom.c.name.label("target"))
                               .outerjoin(_dom, _dom.c.id == domains.c.alias_of)
                               .where(domains.c.name == name.lower())).one_or_none()
            return None if row is None else Domain(row.id, row.name, row.status, row.target)
        return await self.db.read(job)

    async def list_domains(self) -> list[Domain]:
        def job(conn: Connection) -> list[Domain]:
            rows = conn.execute(select(domains.c.id, domains.c.name, domains.c.status, _dom.c.name.label("target"))
                                .outerjoin(_dom, _dom.c.id == domains.c.alias_of).order_by(domains.c.name))
            return [Domain(r.id, r.name, r.status, r.target) for r in rows]
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
                     "highestmodseq": 1, "special_use": use, "subscribed": True}
                    for mbox, use in DEFAULT_MAILBOXES])
                results.append(None)
            return results
        return await self._write(job)  # type: ignore[no-any-return]

    async def get_account(self, address: str) -> Account | None:
        local, domain = _split(address)

        def job(conn: Connection) -> Account | None:
            row = conn.execute(_account_query().where(and_(domains.c.name == domain,
                                                           accounts.c.local_part == local))).one_or_none()
            return None if row is None else _account(row)
        return await self.db.read(job)

    async def list_accounts(self, domain: str | None = None) -> list[Account]:
        def job(conn: Connection) -> list[Account]:
            query = _account_query().order_by(domains.c.name, accounts.c.local_part)
            if domain:
                query = query.where(domains.c.name == domain.lower())
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

        def job(conn: Connection) -> list[str]:
            did = _domain_id(conn, domain)
            row = conn.execute(select(accounts.c.id).where(and_(accounts.c.domain_id == did,
                                                                accounts.c.local_part == local))).one_or_none()
            if row is None:
                raise NotFound("unknown_user", address)
            boxes = select(mailboxes.c.id).where(mailboxes.c.account_id == row.id).scalar_subquery()
            blob_ids = [r.blob_id for r in conn.execute(select(messages.c.blob_id)
                                                        .where(messages.c.mailbox_id.in_(boxes)))]
            conn.execute(delete(accounts).where(accounts.c.id == row.id))
            return _release_blobs(conn, blob_ids)
        await self._collect(await self._write(job))

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
        local, domain = _split(address)

        def job(conn: Connection) -> Alias | None:
            rows = conn.execute(select(alias_targets.c.target)
                                .join(aliases, aliases.c.id == alias_targets.c.alias_id)
                                .join(domains, domains.c.id == aliases.c.domain_id)
                                .where(and_(domains.c.name == domain, aliases.c.local_part == local))
                                .order_by(alias_targets.c.target)).scalars().all()
            return Alias(f"{local}@{domain}", tuple(rows)) if rows else None
        return await self.db.read(job)

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
            # acknowledge a message that has no body.
            if not self.blobs.exists(blob.id):
                raise TemporaryFailure(f"blob {blob.id} vanished before commit")
            delivered: list[int] = []
            over: list[QueuedRecipient] = []
            for d in record.deliveries:
                size = len(d.prefix) + blob.size
                acc = conn.execute(select(accounts.c.quota_bytes, accounts.c.used_bytes)
                                   .where(accounts.c.id == d.account_id)).one_or_none()
                box = conn.execute(select(mailboxes.c.id, mailboxes.c.uidnext, mailboxes.c.highestmodseq)
                                   .where(and_(mailboxes.c.account_id == d.account_id,
                                               mailboxes.c.name == d.mailbox))).one_or_none()
                if acc is None or box is None:
                    raise TemporaryFailure(f"account {d.account_id} vanished during delivery")
                if acc.quota_bytes and acc.used_bytes + size > acc.quota_bytes:
                    over.append(QueuedRecipient(d.address, status="deferred", last_error="4.2.2 quota exceeded"))
                    continue
                conn.execute(insert(messages).values(
                    mailbox_id=box.id, uid=box.uidnext, modseq=box.highestmodseq + 1, flags=" ".join(d.flags),
                    internal_date=record.received_at, size=size, blob_id=blob.id, prefix=d.prefix,
                    queue_id=record.queue_id))
                conn.execute(update(mailboxes).where(mailboxes.c.id == box.id)
                             .values(uidnext=box.uidnext + 1, highestmodseq=box.highestmodseq + 1))
                conn.execute(update(accounts).where(accounts.c.id == d.account_id)
                             .values(used_bytes=accounts.c.used_bytes + size,
                                     message_count=accounts.c.message_count + 1))
                delivered.append(d.account_id)
            if over and not delivered and not record.queued:
                raise QuotaExceeded("every local recipient is over quota")
            pending = list(record.queued) + over
            refs = len(delivered) + (1 if pending else 0)
            if pending:
                conn.execute(insert(queue).values(
                    id=record.queue_id, blob_id=blob.id, sender=record.sender, size=blob.size,
                    created=record.received_at, params=json.dumps(record.params), prefix=record.queue_prefix))
                conn.execute(insert(queue_recipients), [
                    {"queue_id": record.queue_id, "address": r.address, "notify": r.notify, "orcpt": r.orcpt,
                     "status": r.status, "attempts": 0, "next_attempt": record.received_at,
                     "last_error": r.last_error} for r in pending])
            conn.execute(sqlite_insert(blobs).values(id=blob.id, size=blob.size, refcount=refs)
                         .on_conflict_do_update(index_elements=["id"],
                                                set_={"refcount": blobs.c.refcount + refs}))
            return CommitResult(delivered=tuple(delivered), over_quota=tuple(r.address for r in over))
        return await self._write(job, sync)  # type: ignore[no-any-return]

    async def get_mailbox(self, account_id: int, name: str) -> MailboxInfo | None:
        def job(conn: Connection) -> MailboxInfo | None:
            r = conn.execute(select(mailboxes).where(and_(mailboxes.c.account_id == account_id,
                                                          mailboxes.c.name == name))).one_or_none()
            return None if r is None else MailboxInfo(r.id, r.account_id, r.name, r.uidvalidity, r.uidnext,
                                                      r.highestmodseq)
        return await self.db.read(job)

    async def list_messages(self, mailbox_id: int) -> list[MessageEntry]:
        def job(conn: Connection) -> list[MessageEntry]:
            rows = conn.execute(select(messages).where(messages.c.mailbox_id == mailbox_id)
                                .order_by(messages.c.uid))
            return [MessageEntry(r.id, r.mailbox_id, r.uid, r.modseq, tuple(r.flags.split()), r.internal_date,
                                 r.size, r.blob_id, r.prefix) for r in rows]
        return await self.db.read(job)

    async def expunge(self, mailbox_id: int, uids: list[int]) -> int:
        def job(conn: Connection) -> tuple[int, list[str]]:
            rows = conn.execute(select(messages.c.id, messages.c.size, messages.c.blob_id)
                                .where(and_(messages.c.mailbox_id == mailbox_id, messages.c.uid.in_(uids)))).all()
            if not rows:
                return 0, []
            conn.execute(delete(messages).where(messages.c.id.in_([r.id for r in rows])))
            account_id = conn.execute(select(mailboxes.c.account_id)
                                      .where(mailboxes.c.id == mailbox_id)).scalar_one()
            conn.execute(update(accounts).where(accounts.c.id == account_id).values(
                used_bytes=func.max(0, accounts.c.used_bytes - sum(r.size for r in rows)),
                message_count=func.max(0, accounts.c.message_count - len(rows))))
            conn.execute(update(mailboxes).where(mailboxes.c.id == mailbox_id)
                         .values(highestmodseq=mailboxes.c.highestmodseq + 1))
            return len(rows), _release_blobs(conn, [r.blob_id for r in rows])
        count, unreferenced = await self._write(job)
        await self._collect(unreferenced)
        return int(count)

    async def _collect(self, blob_ids: list[str]) -> None:
        """Unlink blobs that lost their last reference, in the writer thread (serialised with
        commit_ingest's existence check) and only if no row came back meanwhile."""
        if not blob_ids:
            return

        def job(conn: Connection) -> None:
            alive = set(conn.execute(select(blobs.c.id).where(blobs.c.id.in_(blob_ids))).scalars())
            for blob_id in blob_ids:
                if blob_id not in alive:
                    self.blobs.delete(blob_id)
        await self._write(job)


def _release_blobs(conn: Connection, blob_ids: list[str]) -> list[str]:
    counts: dict[str, int] = {}
    for b in blob_ids:
        counts[b] = counts.get(b, 0) + 1
    for blob_id, n in counts.items():
        conn.execute(update(blobs).where(blobs.c.id == blob_id).values(refcount=blobs.c.refcount - n))
    dead = list(conn.execute(select(blobs.c.id).where(and_(blobs.c.id.in_(list(counts)),
                                                           blobs.c.refcount <= 0))).scalars())
    if dead:
        conn.execute(delete(blobs).where(blobs.c.id.in_(dead)))
    return dead


class SqliteQueueStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def list_queue(self) -> list[QueueEntry]:
        def job(conn: Connection) -> list[QueueEntry]:
            rows = conn.execute(select(queue.c.id, queue.c.sender, queue.c.created, queue.c.size,
                                       queue_recipients.c.address, queue_recipients.c.notify,
                                       queue_recipients.c.orcpt, queue_recipients.c.status,
                                       queue_recipients.c.last_error)
                                .join(queue_recipients, queue_recipients.c.queue_id == queue.c.id)
                                .where(queue_recipients.c.status.in_(["queued", "deferred"]))
                                .order_by(queue.c.created, queue.c.id, queue_recipients.c.id))
            entries: dict[str, tuple[Any, list[QueuedRecipient]]] = {}
            for r in rows:
                entries.setdefault(r.id, (r, []))[1].append(
                    QueuedRecipient(r.address, r.notify, r.orcpt, r.status, r.last_error))
            return [QueueEntry(r.id, r.sender, r.created, r.size, tuple(rc)) for r, rc in entries.values()]
        return await self.db.read(job)
