"""THE one way into the system (CONVENTIONS habit 2).

Every message — SMTP, submission, and later webmail, DSNs, alarms, the
fetcher and the importer — is streamed into a :class:`Reception`, then
committed: the blob is fsynced and renamed, its directory fsynced, and one
database transaction (grouped with others) writes the mailbox index rows for
local recipients and the queue rows for the rest. Only then does the caller
acknowledge (SMTP 250). See docs/queue.md for the states.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime

from dizimail.interfaces import BlobStore, BlobWriter, MetaStore
from dizimail.model.errors import TemporaryFailure
from dizimail.model.types import (
    Account,
    BlobMeta,
    BlobRef,
    CommitResult,
    IngestRecord,
    LocalDelivery,
    QueuedRecipient,
)
from dizimail.services.notify import Notifier

log = logging.getLogger("dizimail.ingest")
DESCRIBE_LIMIT = 64 * 1024 * 1024  # larger messages get their IMAP renderings on first FETCH


@functools.lru_cache(maxsize=4)
def _rfc5322_date(second: int) -> str:
    return format_datetime(datetime.fromtimestamp(second, UTC))


def new_queue_id() -> str:
    """Sortable, unique: milliseconds since the epoch in hex, then 32 random bits."""
    return f"{int(time.time() * 1000):011X}{secrets.token_hex(4).upper()}"


@dataclass
class Envelope:
    sender: str  # "" for the null reverse-path
    local: list[tuple[str, Account]] = field(default_factory=list)  # (envelope rcpt, account)
    remote: list[QueuedRecipient] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class Reception:
    """A message being received; write bytes, then :meth:`Ingest.commit` or :meth:`abort`."""

    queue_id: str
    writer: BlobWriter
    received_at: float
    size: int = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)
        self.writer.write(data)

    def abort(self) -> None:
        self.writer.abort()


class Ingest:
    def __init__(self, meta: MetaStore, blobs: BlobStore, hostname: str, notifier: Notifier,
                 describe: Callable[[bytes], BlobMeta] | None = None) -> None:
        self.meta = meta
        self.blobs = blobs
        self.hostname = hostname
        self.notifier = notifier
        self.describe = describe

    def begin(self) -> Reception:
        return Reception(new_queue_id(), self.blobs.writer(), time.time())

    def received_header(self, reception: Reception, *, helo: str, client_ip: str, client_name: str,
                        protocol: str, recipient: str | None, tls: str | None) -> bytes:
        """RFC 5321 §4.4 trace header with the queue id (RFC 5322 §3.6.7 folding)."""
        when = format_datetime(datetime.fromtimestamp(reception.received_at, UTC))
        lines = [f"Received: from {helo} ({client_name} [{client_ip}])",
                 f"\tby {self.hostname} (dizimail) with {protocol} id {reception.queue_id}"]
        if tls:
            lines.append(f"\t({tls})")
        if recipient:
            lines.append(f"\tfor <{recipient}>")
        lines[-1] += f"; {when}"
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")

    async def _finish(self, reception: Reception) -> tuple[BlobRef, BlobMeta | None]:
        """fsync and name the blob; compute its IMAP renderings once, while it is in the page cache."""
        def work() -> tuple[BlobRef, BlobMeta | None]:
            blob = reception.writer.finish()
            if self.describe is None or blob.size > DESCRIBE_LIMIT:
                return blob, None
            with self.blobs.open(blob.id) as handle:
                return blob, self.describe(handle.read())
        try:
            return await asyncio.to_thread(work)
        except OSError as exc:
            reception.abort()
            raise TemporaryFailure(f"cannot store message: {exc}") from exc

    async def append(self, account: Account, mailbox: str, data: bytes, flags: tuple[str, ...],
                     internal_date: float | None) -> CommitResult:
        """IMAP APPEND (RFC 3501 §6.3.11) enters here like every other message."""
        reception = self.begin()
        reception.write(data)
        blob, meta = await self._finish(reception)
        record = IngestRecord(queue_id=reception.queue_id, blob=blob, sender="", received_at=reception.received_at,
                              deliveries=(LocalDelivery(account.id, account.address, mailbox, b"", flags,
                                                        internal_date),), meta=meta)
        result = await self.meta.commit_ingest(record)
        self.notifier.changed(result.mailboxes)
        log.info("queue.appended id=%s user=%s mailbox=%r size=%d", reception.queue_id, account.address, mailbox,
                 blob.size)
        return result

    async def commit(self, reception: Reception, envelope: Envelope) -> CommitResult:
        """Make the message durable and visible; raises MailError (QuotaExceeded, TemporaryFailure)."""
        blob, meta = await self._finish(reception)
        return_path = f"Return-Path: <{envelope.sender}>\r\n".encode()
        deliveries = tuple(
            LocalDelivery(account_id=acc.id, address=acc.address, mailbox="INBOX",
                          prefix=return_path + f"Delivered-To: {acc.address}\r\n".encode())
            for _rcpt, acc in envelope.local)
        record = IngestRecord(queue_id=reception.queue_id, blob=blob, sender=envelope.sender,
                              received_at=reception.received_at, deliveries=deliveries,
                              queued=tuple(envelope.remote), params=envelope.params, meta=meta)
        result = await self.meta.commit_ingest(record)
        self.notifier.changed(result.mailboxes)
        log.info("queue.committed id=%s from=<%s> size=%d local=%d queued=%d over_quota=%d",
                 reception.queue_id, envelope.sender, blob.size, len(result.delivered), len(envelope.remote),
                 len(result.over_quota))
        return result
