"""THE one way into the system (CONVENTIONS habit 2).

Every message — SMTP and submission, IMAP APPEND, the DSNs and the fetcher
(through ``services.submit``), and later webmail, alarms and the importer — is
streamed into a :class:`Reception`, then committed: the blob is fsynced and
renamed, its directory fsynced, and one database transaction (grouped with
others) writes the mailbox index rows for local recipients and the queue rows
for the rest. Only then does the caller acknowledge (SMTP 250, IMAP OK). What
may come in was decided before, by ``services.policy``; the quota rule reaches
storage here as each delivery's limit. See docs/queue.md for the states.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import format_datetime

from dizimail.interfaces import BlobStore, BlobWriter, MetaStore
from dizimail.model.errors import QuotaExceeded, TemporaryFailure
from dizimail.model.lists import ListTarget
from dizimail.model.outbound import DkimKey
from dizimail.model.traffic import Flow
from dizimail.model.types import (
    Account,
    BlobMeta,
    BlobRef,
    CommitResult,
    IngestRecord,
    LocalDelivery,
    Quarantined,
    QueuedRecipient,
)
from dizimail.services.content.whitelist import AutoWhitelist
from dizimail.services.dkim import sign as sign_dkim
from dizimail.services.messages import header_summary
from dizimail.services.notify import Notifier
from dizimail.services.policy.gateway import strip_fields
from dizimail.services.policy.quota import QuotaRule
from dizimail.services.policy.report import SpamMarks, SpamRule, authentication_results, tag_subject
from dizimail.services.policy.verdict import Finding
from dizimail.services.routing import Kind, Resolution
from dizimail.services.sieve.deliver import SieveDelivery
from dizimail.services.traffic import TrafficCounter, domain_of

log = logging.getLogger("dizimail.ingest")
DESCRIBE_LIMIT = 64 * 1024 * 1024  # larger messages get their IMAP renderings on first FETCH
HEAD_LIMIT = 64 * 1024  # what is read of a quarantined message for its subject and From:
KEEP_START = 64 * 1024  # bytes of each message being received kept in memory (its header, for users' rules)
DEFAULT_COPY: list[tuple[str | None, tuple[str, ...]]] = [(None, ())]  # INBOX (or Junk), no flags


def new_queue_id() -> str:
    """Sortable, unique: milliseconds since the epoch in hex, then 32 random bits."""
    return f"{int(time.time() * 1000):011X}{secrets.token_hex(4).upper()}"


@dataclass
class Envelope:
    sender: str  # "" for the null reverse-path
    local: list[tuple[str, Account]] = field(default_factory=list)  # (envelope rcpt, account)
    remote: list[QueuedRecipient] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    hold: list[tuple[str, Account]] = field(default_factory=list)  # (rcpt, holding account): poll-mode gateway
    dkim: DkimKey | None = None  # sign for the remote recipients (submitted mail)
    fetched: tuple[int, str] | None = None  # (fetch account id, remote UID), recorded with the commit
    findings: list[Finding] = field(default_factory=list)  # what the scoring checks saw (Authentication-Results)
    submitted: bool = False  # by a logged-in user (their remote recipients join the automatic whitelist)
    lists: list[tuple[str, ListTarget]] = field(default_factory=list)  # (rcpt, what it asks of a list)
    extra: dict[str, bytes] = field(default_factory=dict)  # a local account's own header lines (a list's)
    archive: tuple[Account, str] | None = None  # one more copy, into this account's folder (a list's archive)

    @property
    def count(self) -> int:
        return len(self.local) + len(self.remote) + len(self.hold) + len(self.lists)

    def addresses(self) -> list[str]:
        """Whom the message goes to, once each: local accounts (an alias's by their own address), the
        poll-mode holding box's recipients, remote addresses. Spam settings are looked up by these."""
        return list(dict.fromkeys([*(a.address for _, a in self.local), *(r for r, _ in self.hold),
                                   *(r.address for r in self.remote), *(r for r, _ in self.lists)]))

    def only(self, addresses: set[str]) -> Envelope:
        """The same envelope for some of its recipients (as :meth:`addresses` names them)."""
        return replace(self, local=[p for p in self.local if p[1].address in addresses],
                       hold=[p for p in self.hold if p[0] in addresses],
                       remote=[r for r in self.remote if r.address in addresses],
                       lists=[p for p in self.lists if p[0] in addresses])

    def add(self, address: str, resolution: Resolution, notify: str | None = None, orcpt: str | None = None) -> None:
        """Take an accepted recipient (lower-case ``address``) as the router resolved it; an account or
        remote address reached twice (aliases, duplicates) is kept once."""
        if resolution.kind is Kind.HOLD:
            if all(r != address for r, _ in self.hold):
                self.hold.extend((address, a) for a in resolution.accounts)
            return
        if resolution.target is not None:
            if all(r != address for r, _ in self.lists):
                self.lists.append((address, resolution.target))
            return
        for account in resolution.accounts:
            if all(a.id != account.id for _, a in self.local):
                self.local.append((address, account))
        for remote in resolution.remote:
            if all(r.address != remote for r in self.remote):
                self.remote.append(QueuedRecipient(remote, notify=notify, orcpt=orcpt))


@dataclass
class Reception:
    """A message being received; write bytes, then :meth:`Ingest.commit` or :meth:`abort`."""

    queue_id: str
    writer: BlobWriter
    received_at: float
    size: int = 0
    start: bytearray = field(default_factory=bytearray)  # the first KEEP_START bytes, kept in memory too

    def write(self, data: bytes) -> None:
        self.size += len(data)
        self.writer.write(data)
        if len(self.start) < KEEP_START:  # users' rules read the header from here, not from the disk
            self.start += data[:KEEP_START - len(self.start)]

    def head(self) -> bytes | None:
        """The message's header (and what follows it in the kept bytes), or None when the header goes
        on past them."""
        kept = bytes(self.start)
        if self.size <= len(kept) or b"\r\n\r\n" in kept or b"\n\n" in kept or kept[:1] in (b"\r", b"\n"):
            return kept
        return None

    def abort(self) -> None:
        self.writer.abort()

    def reader(self, limit: int) -> Callable[[], Awaitable[bytes]]:
        """Reads the message received so far (at most ``limit`` bytes) once, for every check that asks."""
        cached: list[bytes] = []

        async def read() -> bytes:
            if not cached:
                cached.append(await asyncio.to_thread(self.writer.peek, limit))
            return cached[0]
        return read


class Ingest:
    def __init__(self, meta: MetaStore, blobs: BlobStore, hostname: str, notifier: Notifier,
                 describe: Callable[[bytes], BlobMeta] | None = None, quota: QuotaRule | None = None,
                 spam: SpamRule | None = None, whitelist: AutoWhitelist | None = None,
                 quarantine_keep: float = 30 * 86400.0) -> None:
        self.meta = meta
        self.blobs = blobs
        self.hostname = hostname
        self.notifier = notifier
        self.describe = describe
        self.quota = quota or QuotaRule()
        self.spam = spam
        self.whitelist = whitelist
        self.queued = asyncio.Event()  # set when something was queued: wakes the queue runner
        self.received = 0  # messages received so far (the search indexer yields while it moves)
        self.quarantine_keep = quarantine_keep
        self.on_quarantine: Callable[[Quarantined], None] | None = None  # notices (services.quarantine)
        self.traffic: TrafficCounter | None = None  # mail counted per day and domain (services.traffic)
        self.sieve: SieveDelivery | None = None  # users' rules at local delivery (services.sieve.deliver)
        # Mail to a list's addresses (services.lists.receive), handled before the rest is committed.
        self.lists: Callable[[Envelope, Callable[[], Awaitable[bytes]], bytes], Awaitable[None]] | None = None

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

    async def _finish(self, reception: Reception, *, describe: bool = True,
                      dkim: DkimKey | None = None) -> tuple[BlobRef, BlobMeta | None, bytes]:
        """fsync and name the blob; compute its IMAP renderings (and DKIM signature) once, while it is
        in the page cache."""
        self.received += 1

        def work() -> tuple[BlobRef, BlobMeta | None, bytes]:
            blob = reception.writer.finish()
            describe_it = describe and self.describe is not None and blob.size <= DESCRIBE_LIMIT
            if not describe_it and dkim is None:
                return blob, None, b""
            with self.blobs.open(blob.id) as handle:
                data = handle.read()
            signature = b""
            if dkim is not None:
                try:
                    signature = sign_dkim(dkim, data)
                except Exception as exc:  # a message dkimpy cannot sign still goes out, unsigned
                    log.warning("dkim.sign.failed id=%s domain=%s error=%s", reception.queue_id, dkim.domain, exc)
            return blob, self.describe(data) if describe_it and self.describe else None, signature
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
        blob, meta, _ = await self._finish(reception)
        limit = self.quota.limit(await self._fresh(account))
        record = IngestRecord(queue_id=reception.queue_id, blob=blob, sender="", received_at=reception.received_at,
                              deliveries=(LocalDelivery(account.id, account.address, mailbox, b"", flags,
                                                        internal_date, limit),), meta=meta)
        result = await self.meta.commit_ingest(record)
        if not result.delivered:
            raise QuotaExceeded(f"{account.address}: APPEND of {blob.size} octets")
        self.notifier.changed(result.mailboxes)
        log.info("queue.appended id=%s user=%s mailbox=%r size=%d", reception.queue_id, account.address, mailbox,
                 blob.size)
        return result

    async def commit(self, reception: Reception, envelope: Envelope) -> CommitResult:
        """Make the message durable and visible; raises MailError (QuotaExceeded, TemporaryFailure).

        Judged mail is marked per recipient (their thresholds, their personal score): X-Spam-* lines
        and the Junk folder go with each delivery; when some recipients' copies are to carry the
        [SPAM] subject tag and others' not, the message is stored twice, once tagged."""
        spans = sorted(span for f in envelope.findings for span in f.strip)
        if spans:  # forged verdict headers (services.policy.gateway)
            reception = await self._rewritten(reception, lambda data: strip_fields(data, spans))
        marks = await self._judge(envelope)
        held = next((f for f in envelope.findings if f.quarantine), None)
        if held is not None:
            return await self._hold(reception, envelope, held, next(iter(marks.values()), None))
        tagged = {a for a, m in marks.items() if m.tag}
        if tagged and self.spam is not None:
            if len(tagged) == len(marks):
                reception = await self._tagged(reception, self.spam.subject_tag)
            else:
                copy = await self._tagged(reception, self.spam.subject_tag, keep=True)
                return await self._split([(reception, envelope.only(set(marks) - tagged)),
                                          (copy, replace(envelope.only(tagged), fetched=None))], marks)
        return await self._store(reception, envelope, marks)

    async def _split(self, parts: list[tuple[Reception, Envelope]], marks: dict[str, SpamMarks]) -> CommitResult:
        """Each part of a message stored in more than one form; over quota only if no part could be stored."""
        results: list[CommitResult] = []
        full: QuotaExceeded | None = None
        for i, (reception, envelope) in enumerate(parts):
            try:
                results.append(await self._store(reception, envelope, marks))
            except QuotaExceeded as exc:
                full = exc
            except BaseException:
                for later, _ in parts[i + 1:]:
                    later.abort()
                raise
        if not results:
            assert full is not None
            raise full
        return CommitResult(delivered=sum((r.delivered for r in results), ()),
                            refused=sum((r.refused for r in results), ()),
                            mailboxes=sum((r.mailboxes for r in results), ()), uids=sum((r.uids for r in results), ()))

    async def _judge(self, envelope: Envelope) -> dict[str, SpamMarks]:
        """Each recipient's marks (empty: nothing judged the message)."""
        if self.spam is None or not any(not f.strip for f in envelope.findings):  # removals judge nothing
            return {}
        out: dict[str, SpamMarks] = {}
        for address in envelope.addresses():
            marked = self.spam.judge(envelope.findings, await self.spam.levels(address), address)
            if marked is not None:
                out[address] = marked
        return out

    async def _store(self, reception: Reception, envelope: Envelope, marks: dict[str, SpamMarks]) -> CommitResult:
        release = float(envelope.params.get("RELEASE") or 0)
        if release > reception.received_at:  # FUTURERELEASE (RFC 4865): every recipient waits in the queue
            envelope = replace(envelope, local=[], hold=[], lists=[], remote=[
                *(replace(r, next_attempt=release) for r in envelope.remote),
                *(QueuedRecipient(rcpt, next_attempt=release)
                  for rcpt, _ in (*envelope.local, *envelope.hold, *envelope.lists))])
            log.info("queue.release.held id=%s from=<%s> rcpts=%d until=%.0f", reception.queue_id, envelope.sender,
                     len(envelope.remote), release)
        if envelope.lists:  # what it asks of lists is committed first (a post: its own message, services.lists)
            if self.lists is not None:
                try:
                    await self.lists(envelope, reception.reader(reception.size + 1), bytes(reception.start))
                except BaseException:
                    reception.abort()
                    raise
            envelope = replace(envelope, lists=[])
            if not envelope.count and envelope.fetched is None and envelope.archive is None:
                reception.abort()
                return CommitResult(delivered=(), refused=())
        # Users' rules decide each local copy (services.sieve.deliver) before anything is durable: what
        # they send away is queued first; a message every recipient discarded is not stored at all.
        filed: dict[int, list[tuple[str | None, tuple[str, ...]]]] = {}
        if self.sieve is not None and envelope.local:
            try:
                filed = await self.sieve.decide(envelope, reception, marks)
            except BaseException:  # refused by every recipient (ereject), or the store failed: nothing is kept
                reception.abort()
                raise
        if filed and not envelope.remote and not envelope.hold and envelope.fetched is None and all(
                filed.get(acc.id) == [] for _, acc in envelope.local) and envelope.archive is None:
            reception.abort()
            log.info("queue.discarded id=%s from=<%s> local=%d", reception.queue_id, envelope.sender,
                     len(envelope.local))
            return CommitResult(delivered=(), refused=())
        if envelope.archive is not None:  # a list's archive: one more copy, whatever the account's rules did
            keeper, folder = envelope.archive
            copies = filed.get(keeper.id, DEFAULT_COPY) if any(a.id == keeper.id for _, a in envelope.local) else []
            filed[keeper.id] = [*copies, (folder, ())]
            if not copies:
                envelope = replace(envelope, local=[*envelope.local, (keeper.address, keeper)])
        blob, meta, signature = await self._finish(
            reception, describe=bool(envelope.local or envelope.hold), dkim=envelope.dkim if envelope.remote else None)
        auth = authentication_results(self.hostname, envelope.findings)

        def trace(address: str) -> bytes:
            return auth + (marks[address].headers if address in marks else b"")
        junk = {acc.id: await self._junk(acc) for _, acc in envelope.local
                if acc.address in marks and marks[acc.address].junk}
        return_path = f"Return-Path: <{envelope.sender}>\r\n".encode()
        # A mailbox too full for the message defers its recipient in the queue (retried as space frees),
        # unless nothing else of the message could be stored: then the whole message is refused (452).
        deliveries = tuple(
            LocalDelivery(account_id=acc.id, address=acc.address, mailbox=box or junk.get(acc.id, "INBOX"),
                          prefix=return_path + f"Delivered-To: {acc.address}\r\n".encode() + trace(acc.address)
                          + envelope.extra.get(acc.address, b""), flags=flags, limit=self.quota.limit(acc),
                          fallback=self.quota.deferred(acc.address) if i == 0 else None)
            for _rcpt, acc in envelope.local
            for i, (box, flags) in enumerate(filed.get(acc.id, DEFAULT_COPY))) + tuple(
            LocalDelivery(account_id=acc.id, address=acc.address, mailbox="INBOX",
                          prefix=return_path + f"Delivered-To: {rcpt}\r\n".encode() + trace(rcpt),
                          limit=self.quota.limit(acc), fallback=self.quota.deferred(acc.address))
            for rcpt, acc in envelope.hold)
        queue_prefix = trace(envelope.remote[0].address) if envelope.remote else auth
        record = IngestRecord(queue_id=reception.queue_id, blob=blob, sender=envelope.sender,
                              received_at=reception.received_at, deliveries=deliveries,
                              queued=tuple(envelope.remote), queue_prefix=queue_prefix + signature,
                              params=envelope.params, meta=meta, fetched=envelope.fetched)
        result = await self.meta.commit_ingest(record)
        if not result.delivered and not envelope.remote and result.refused:  # nothing was written
            raise QuotaExceeded(f"every local recipient is over quota: {', '.join(result.refused)}")
        self.notifier.changed(result.mailboxes)
        if self.traffic is not None:
            stored = set(result.delivered)
            for delivery in {d.account_id: d for d in deliveries}.values():  # an account's copies count once
                if delivery.account_id in stored:
                    self.traffic.count(domain_of(delivery.address), Flow.IN, blob.size)
            if envelope.remote:
                self.traffic.count(domain_of(envelope.sender), Flow.OUT, blob.size)
        log.debug("queue.committed id=%s from=<%s> size=%d local=%d queued=%d over_quota=%d%s",
                 reception.queue_id, envelope.sender, blob.size, len(result.delivered), len(envelope.remote),
                 len(result.refused), " dkim=" + envelope.dkim.domain if signature and envelope.dkim else "")
        if envelope.remote or result.refused:
            self.queued.set()
        if self.whitelist is not None:
            self._observe(envelope, bool(marks) and not any(m.tag for m in marks.values()))
        return result

    async def _hold(self, reception: Reception, envelope: Envelope, held: Finding,
                    marks: SpamMarks | None) -> CommitResult:
        """Into the quarantine instead of the mailboxes and the queue (one transaction, like a delivery)."""
        head = await asyncio.to_thread(reception.writer.peek, HEAD_LIMIT)
        blob, meta, signature = await self._finish(reception, dkim=envelope.dkim if envelope.remote else None)
        subject, sender = header_summary(head)
        recipients = dict.fromkeys([*(r for r, _ in envelope.local), *(r.address for r in envelope.remote),
                                    *(r for r, _ in envelope.hold), *(r for r, _ in envelope.lists)])
        entry = Quarantined(
            queue_id=reception.queue_id, blob_id=blob.id, size=blob.size, sender=envelope.sender,
            recipients=tuple(recipients), kind="virus" if held.check == "antivirus" else "spam",
            reason=held.quarantine, score=marks.score if marks is not None else 0.0,
            findings=tuple((f.check, f.result, f.score, f.reason) for f in envelope.findings),
            prefix=authentication_results(self.hostname, envelope.findings) + (marks.headers if marks else b""),
            subject=subject, from_=sender, created=reception.received_at,
            expires=reception.received_at + self.quarantine_keep, signature=signature)
        result = await self.meta.commit_ingest(IngestRecord(
            queue_id=reception.queue_id, blob=blob, sender=envelope.sender, received_at=reception.received_at,
            meta=meta, fetched=envelope.fetched, quarantine=entry))
        log.info("quarantine.held id=%s entry=%d kind=%s from=<%s> rcpts=%d reason=%r", reception.queue_id,
                 result.quarantined, entry.kind, envelope.sender, len(recipients), entry.reason)
        if self.on_quarantine is not None:
            self.on_quarantine(replace(entry, id=result.quarantined))
        return result

    async def keep(self, data: bytes, sender: str, recipients: tuple[str, ...], *, kind: str, reason: str,
                   subject: str, from_: str, keep: float) -> Quarantined:
        """``data`` held for a human as a quarantine entry of ``kind`` (a list's post waiting for a moderator),
        made durable and committed before this returns; the entry with its id."""
        reception = self.begin()
        try:
            reception.write(data)
        except BaseException:
            reception.abort()
            raise
        blob, meta, _ = await self._finish(reception)
        entry = Quarantined(queue_id=reception.queue_id, blob_id=blob.id, size=blob.size, sender=sender,
                            recipients=recipients, kind=kind, reason=reason, score=0.0, findings=(), prefix=b"",
                            subject=subject, from_=from_, created=reception.received_at,
                            expires=reception.received_at + keep)
        result = await self.meta.commit_ingest(IngestRecord(
            queue_id=reception.queue_id, blob=blob, sender=sender, received_at=reception.received_at, meta=meta,
            quarantine=entry))
        return replace(entry, id=result.quarantined)

    async def held_bytes(self, entry: Quarantined) -> bytes:
        def read() -> bytes:
            with self.blobs.open(entry.blob_id) as handle:
                return handle.read()
        return await asyncio.to_thread(read)

    async def release_to_lists(self, entry: Quarantined, envelope: Envelope) -> None:
        """The list addresses among a quarantined message's recipients take it now (before :meth:`release`
        of the others), as they would have at its arrival."""
        if not envelope.lists or self.lists is None:
            return
        held = entry.prefix + await self.held_bytes(entry)

        async def read() -> bytes:
            return held
        await self.lists(replace(envelope, sender=entry.sender), read, held[:KEEP_START])

    async def release(self, entry: Quarantined, envelope: Envelope) -> CommitResult:
        """A quarantined message goes where it was going (``envelope``: its recipients resolved anew), with the
        trace lines it would have had; the entry goes in the same transaction. QuotaExceeded when nothing
        could be stored (the entry stays)."""
        blob = BlobRef(entry.blob_id, entry.size)
        return_path = f"Return-Path: <{entry.sender}>\r\n".encode()
        deliveries = tuple(
            LocalDelivery(account_id=acc.id, address=acc.address, mailbox="INBOX",
                          prefix=return_path + f"Delivered-To: {rcpt if hold else acc.address}\r\n".encode() +
                          entry.prefix, limit=self.quota.limit(acc), fallback=self.quota.deferred(acc.address))
            for hold, pairs in ((False, envelope.local), (True, envelope.hold)) for rcpt, acc in pairs)
        result = await self.meta.commit_ingest(IngestRecord(
            queue_id=entry.queue_id, blob=blob, sender=entry.sender, received_at=time.time(), deliveries=deliveries,
            queued=tuple(envelope.remote), queue_prefix=entry.prefix + entry.signature, released=entry.id))
        if not result.delivered and not envelope.remote:
            raise QuotaExceeded(f"quarantine entry {entry.id}: no recipient could take it "
                                f"({', '.join(result.refused) or 'none left'})")
        self.notifier.changed(result.mailboxes)
        if envelope.remote or result.refused:
            self.queued.set()
        log.info("quarantine.released id=%s entry=%d local=%d queued=%d", entry.queue_id, entry.id,
                 len(result.delivered), len(envelope.remote))
        return result

    def _observe(self, envelope: Envelope, clean: bool) -> None:
        """Layer 3 learns: whom local users write to, and which authenticated senders send clean mail."""
        assert self.whitelist is not None
        if envelope.submitted and envelope.remote and envelope.sender:
            domain = envelope.sender.rpartition("@")[2]
            self.whitelist.observe(written=[(r.address, domain) for r in envelope.remote])
        elif clean:
            sender = next((v for f in envelope.findings if f.check == "whitelist" for k, v in f.properties
                           if k == "from"), "")
            if sender:
                self.whitelist.observe(clean=[(sender, rcpt.rpartition("@")[2]) for rcpt, _ in envelope.local])

    async def _junk(self, account: Account) -> str:
        """The account's Junk folder (special use \\Junk, RFC 6154), or INBOX if it has none."""
        boxes = await self.meta.list_mailboxes(account.id)
        return next((b.name for b in boxes if b.special_use == "\\Junk"), "INBOX")

    async def _tagged(self, reception: Reception, tag: str, keep: bool = False) -> Reception:
        """The same message with ``tag`` before its Subject; ``keep``: as a copy with a queue id of its own,
        the untagged one kept."""
        return await self._rewritten(reception, lambda data: tag_subject(data, tag), keep)

    async def _rewritten(self, reception: Reception, edit: Callable[[bytes], bytes], keep: bool = False) -> Reception:
        """The message as ``edit`` changes it (the bytes are rewritten once, in a thread)."""
        data = await asyncio.to_thread(reception.writer.peek, reception.size + 1)
        edited = Reception(new_queue_id() if keep else reception.queue_id, self.blobs.writer(),
                           reception.received_at)
        try:
            edited.write(await asyncio.to_thread(edit, data))
        except BaseException:
            edited.abort()
            raise
        if not keep:
            reception.abort()
        return edited

    async def redeliver(self, queue_id: str, blob: BlobRef, sender: str, account: Account) -> CommitResult:
        """A queued local recipient (over quota earlier) gets its copy now; QuotaExceeded if still full."""
        return_path = f"Return-Path: <{sender}>\r\n".encode()
        record = IngestRecord(queue_id=queue_id, blob=blob, sender=sender, received_at=time.time(), deliveries=(
            LocalDelivery(account.id, account.address, "INBOX", return_path + f"Delivered-To: {account.address}\r\n"
                          .encode(), limit=self.quota.limit(account)),))
        result = await self.meta.commit_ingest(record)
        if not result.delivered:
            raise QuotaExceeded(f"{account.address} is still over quota")
        self.notifier.changed(result.mailboxes)
        return result

    async def _fresh(self, account: Account) -> Account:
        """The account as stored now (a session's copy is from its login: the quota may have changed)."""
        return await self.meta.get_account(account.address) or account
