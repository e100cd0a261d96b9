"""The queue runner: lease due messages, deliver per destination, record an outcome per recipient.

Per message: recipients are grouped by destination (a local account whose
delivery was deferred for quota, or a remote domain → NextHops); each group is
one SMTP transaction through RemoteDelivery, run in parallel within the
concurrency slots; the outcomes of a group are committed as soon as it is
done, so a crash later cannot send those recipients again. DSNs are ingested
*before* the outcomes that cause them are committed: a crash in between may
duplicate a notice, never lose one. States: docs/queue.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from dizimail.config.schema import DeliveryConfig
from dizimail.interfaces import BlobStore, QueueStore, SettingsStore
from dizimail.interfaces.outbound import Envelope
from dizimail.model.errors import MailError
from dizimail.model.outbound import QueueItem, QueueRecipientRow, RecipientOutcome
from dizimail.model.traffic import Flow
from dizimail.model.types import Account, BlobRef, RcptStatus
from dizimail.services.delivery.nexthop import Destination, NextHops
from dizimail.services.delivery.remote import Attempt, RemoteDelivery
from dizimail.services.ingest import Ingest
from dizimail.services.offload import opened
from dizimail.services.queue import QueueService
from dizimail.services.queue.dsn import RecipientStatus, build_dsn, status_of, wants
from dizimail.services.routing import Kind, Router
from dizimail.services.submit import Submitter
from dizimail.services.traffic import domain_of

RELEASED = "released"  # the group of a held message's local recipients (FUTURERELEASE)
log = logging.getLogger("dizimail.queue")
CHUNK = 256 * 1024
BATCH_WAIT = 0.01


@dataclass
class _Group:
    key: str  # "local:<account id>" or the destination's key (route, smarthost, mx:domain)
    rcpts: list[QueueRecipientRow]
    dest: Destination | None = None


class QueueRunner:
    def __init__(self, *, store: QueueStore, settings: SettingsStore, router: Router, ingest: Ingest,
                 submitter: Submitter, blobs: BlobStore, nexthops: NextHops, remote: RemoteDelivery,
                 config: DeliveryConfig, owner: str, hostname: str) -> None:
        self.store = store
        self.operator = QueueService(store, settings)
        self.router = router
        self.ingest = ingest
        self.submitter = submitter
        self.blobs = blobs
        self.nexthops = nexthops
        self.remote = remote
        self.config = config
        self.owner = owner
        self.hostname = hostname
        self.active: dict[str, asyncio.Task[None]] = {}
        self.leased_until: dict[str, float] = {}
        self.delivered = 0
        self._backlog = False  # the last lease filled all the room: more may be due right now
        self._total = 0

    # --- the loop -----------------------------------------------------------
    async def run(self) -> None:
        released = await self.store.release_all(self.owner)
        if released:
            log.info("queue.leases.released owner=%s count=%d", self.owner, released)
        try:
            while True:
                try:
                    await self.tick()
                except MailError as exc:
                    log.warning("queue.runner.error %s", exc.detail)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.ingest.queued.wait(), self.config.poll_interval)
                    await asyncio.sleep(BATCH_WAIT)  # let the messages arriving together go in one lease
                self.ingest.queued.clear()
        finally:
            for task in self.active.values():
                task.cancel()
            await asyncio.gather(*self.active.values(), return_exceptions=True)
            await self.remote.reap(force=True)

    async def tick(self) -> None:
        total, per = await self.operator.concurrency(self.config.concurrency, self.config.destination_concurrency)
        await self.remote.slots.resize(total, per)
        now = time.time()
        room = max(0, 4 * total - len(self.active))  # leased ahead so the slots never starve
        self._total = total
        if room:
            items = await self.store.lease(self.owner, now, now + self.config.lease, room)
            self._backlog = len(items) == room
            for item in items:
                self.leased_until[item.queue_id] = now + self.config.lease
                task = asyncio.get_running_loop().create_task(self.process(item))
                self.active[item.queue_id] = task
                task.add_done_callback(functools.partial(self._done, item.queue_id))
        renew = [qid for qid, until in self.leased_until.items() if until - now < self.config.lease / 2]
        if renew:
            await self.store.renew(self.owner, renew, now + self.config.lease)
            for qid in renew:
                self.leased_until[qid] = now + self.config.lease
        await self.remote.reap()

    def _done(self, queue_id: str, _task: asyncio.Task[None]) -> None:
        task = self.active.pop(queue_id, None)
        self.leased_until.pop(queue_id, None)
        if self._backlog and len(self.active) <= 3 * self._total:
            # Messages wait beyond what was leased: lease again once a slot's worth of room is
            # free, rather than at the next wake-up from ingest or the next poll (a backlog left
            # when new mail stops coming would otherwise drain at one lease per poll_interval).
            self._backlog = False
            self.ingest.queued.set()
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("queue.process.crashed id=%s", queue_id, exc_info=task.exception())

    async def drain(self) -> None:
        """Wait until the messages being worked on are done (tests and shutdown)."""
        while self.active:
            await asyncio.gather(*list(self.active.values()), return_exceptions=True)

    # --- one message ------------------------------------------------------------
    async def process(self, item: QueueItem) -> None:
        """Recipients are grouped by next hop (domains sharing a route or the smarthost go in one transaction)."""
        groups: dict[str, _Group] = {}
        local: dict[str, Account] = {}
        destinations: dict[str, Destination] = {}
        for rcpt in item.recipients:
            domain = rcpt.address.rpartition("@")[2].lower()
            dest: Destination | None = None
            key = ""
            if rcpt.status is RcptStatus.DEFERRED and "4.2.2" in rcpt.last_error:  # a local mailbox that was full
                res = await self.router.resolve(rcpt.address)
                if res.kind is Kind.LOCAL and len(res.accounts) == 1 and not res.remote:
                    key = f"local:{res.accounts[0].id}"
                    local[key] = res.accounts[0]
            elif "RELEASE" in item.params and (await self.router.resolve(rcpt.address)).kind in (
                    Kind.LOCAL, Kind.HOLD, Kind.LIST):
                key = RELEASED  # held until now (FUTURERELEASE): delivered here as a new message would be
            if not key:
                if domain not in destinations:
                    destinations[domain] = await self.nexthops.resolve(domain)
                dest = destinations[domain]
                key = dest.key
                if rcpt.sender is not None or rcpt.prefix:  # its own return path or lines: its own transaction
                    key = f"{key}#{rcpt.id}"
            groups.setdefault(key, _Group(key, [], dest)).rcpts.append(rcpt)
        # One group (the usual case): its outcomes and the lease's release are one transaction.
        single = len(groups) == 1
        results = await asyncio.gather(*(self.deliver_group(item, g, local.get(g.key), release=single)
                                         for g in groups.values()), return_exceptions=True)
        failed = False
        for group, result in zip(groups.values(), results, strict=True):
            if isinstance(result, BaseException):
                failed = True
                log.error("queue.group.crashed id=%s group=%s", item.queue_id, group.key, exc_info=result)
                await self.settle(item, [RecipientOutcome(r.id, RcptStatus.DEFERRED, "4.3.0 internal error",
                                                          self.next_attempt(item, r)) for r in group.rcpts])
        if not single or failed:
            await self.store.settle(self.owner, item.queue_id, [], release=True)

    async def deliver_group(self, item: QueueItem, group: _Group, account: Account | None, *,
                            release: bool = False) -> None:
        if group.key == RELEASED:
            await self.settle(item, await self.deliver_released(item, group), release=release, success="delivered")
            return
        if account is not None:
            outcomes = await self.deliver_local(item, group, account)
            await self.settle(item, outcomes, release=release, success="delivered")
            return
        dest = group.dest
        assert dest is not None
        own = group.rcpts[0]  # a recipient with a sender or lines of its own is a group alone
        sender = own.sender if own.sender is not None else item.sender
        env = Envelope(sender=sender, recipients=tuple(r.address for r in group.rcpts),
                       mail_params=self.mail_params(item, own.prefix),
                       rcpt_params=tuple(self.rcpt_params(r) for r in group.rcpts))
        attempt = await self.remote.deliver(dest, env, lambda: self.body(item, own.prefix))
        # A next hop without DSN cannot report success: we say "relayed" for it (RFC 3461 §4.1, §5.2.2).
        await self.settle(item, self.outcomes(item, group, attempt), remote_mta=attempt.host, release=release,
                          success="" if attempt.dsn else "relayed")

    async def deliver_local(self, item: QueueItem, group: _Group, account: Account) -> list[RecipientOutcome]:
        try:
            await self.ingest.redeliver(item.queue_id, BlobRef(item.blob_id, item.size), item.sender, account)
        except MailError as exc:
            code = f"{exc.code} {exc.enhanced} {exc.detail or exc.public_key}"
            if exc.temporary or exc.code == 452:
                return [RecipientOutcome(r.id, RcptStatus.DEFERRED, code, self.next_attempt(item, r)) for r in group.rcpts]
            return [RecipientOutcome(r.id, RcptStatus.FAILED, code) for r in group.rcpts]
        return [RecipientOutcome(r.id, RcptStatus.DELIVERED, "250 2.0.0 delivered to mailbox") for r in group.rcpts]

    async def deliver_released(self, item: QueueItem, group: _Group) -> list[RecipientOutcome]:
        """Local recipients of a message whose release time came (RFC 4865): it enters through the submitter
        as a new message would (the recipients' rules, quota and folders apply now, not when it was sent)."""
        data = await asyncio.to_thread(self._read_whole, item.blob_id)
        try:
            result = await self.submitter.submit(item.sender, [r.address for r in group.rcpts], data,
                                                 protocol="release")
        except MailError as exc:
            code = f"{exc.code} {exc.enhanced} {exc.detail or exc.public_key}"
            if exc.temporary:
                return [RecipientOutcome(r.id, RcptStatus.DEFERRED, code, self.next_attempt(item, r))
                        for r in group.rcpts]
            return [RecipientOutcome(r.id, RcptStatus.FAILED, code) for r in group.rcpts]
        log.info("queue.released id=%s local=%d", item.queue_id, len(result.delivered))
        return [RecipientOutcome(r.id, RcptStatus.DELIVERED, "250 2.0.0 released to mailbox") for r in group.rcpts]

    def _read_whole(self, blob_id: str) -> bytes:
        with self.blobs.open(blob_id) as handle:
            return handle.read()

    def outcomes(self, item: QueueItem, group: _Group, attempt: Attempt) -> list[RecipientOutcome]:
        result = attempt.result
        out: list[RecipientOutcome] = []
        for i, rcpt in enumerate(group.rcpts):
            if result is None:
                detail = attempt.error
                permanent = detail.startswith("5")
            else:
                reply = result.rcpts[i] if result.mail.positive else result.mail
                if reply.positive:
                    reply = result.data if result.data is not None else reply
                if reply.positive and result.data is not None:
                    out.append(RecipientOutcome(rcpt.id, RcptStatus.DELIVERED, str(reply)))
                    continue
                detail = f"{reply.code} {reply.enhanced} {reply.text}" if not reply.text.startswith(
                    reply.enhanced) else str(reply)
                permanent = reply.permanent
            if permanent:
                out.append(RecipientOutcome(rcpt.id, RcptStatus.FAILED, detail))
            else:
                out.append(RecipientOutcome(rcpt.id, RcptStatus.DEFERRED, detail, self.next_attempt(item, rcpt)))
        return out

    def next_attempt(self, item: QueueItem, rcpt: QueueRecipientRow) -> float:
        schedule = self.config.retry_schedule or [300.0]
        return time.time() + schedule[min(rcpt.attempts, len(schedule) - 1)]

    def mail_params(self, item: QueueItem, own: bytes = b"") -> tuple[str, ...]:
        params = [f"SIZE={item.size + len(item.prefix) + len(own)}"]
        for name in ("BODY", "RET", "ENVID"):
            if item.params.get(name):
                params.append(f"{name}={item.params[name]}")
        if "SMTPUTF8" in item.params:
            params.append("SMTPUTF8")
        return tuple(params)

    @staticmethod
    def rcpt_params(rcpt: QueueRecipientRow) -> tuple[str, ...]:
        params = []
        if rcpt.notify:
            params.append(f"NOTIFY={rcpt.notify}")
        if rcpt.orcpt:
            params.append(f"ORCPT={rcpt.orcpt}")
        return tuple(params)

    async def body(self, item: QueueItem, own: bytes = b"") -> AsyncIterator[bytes]:
        if own:
            yield own
        if item.prefix:
            yield item.prefix
        if item.size <= CHUNK:  # the common case: one hop to a thread for the whole file
            yield await asyncio.to_thread(self._read_small, item.blob_id)
            return
        handle = await opened(self.blobs.open, item.blob_id)
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk
        finally:
            handle.close()

    def _read_small(self, blob_id: str) -> bytes:
        with self.blobs.open(blob_id) as handle:
            return handle.read()

    # --- outcomes, expiry, DSNs ---------------------------------------------------
    async def settle(self, item: QueueItem, outcomes: list[RecipientOutcome], remote_mta: str = "", *,
                     release: bool = False, success: str = "") -> None:
        now = time.time()
        by_id = {r.id: r for r in item.recipients}
        final: list[RecipientOutcome] = []
        for o in outcomes:
            if o.status is RcptStatus.DEFERRED and now - item.created >= self.config.max_age:
                o = RecipientOutcome(o.rcpt_id, RcptStatus.FAILED, f"4.4.7 Message expired, last error: {o.detail}")
            final.append(o)
        failed = [o for o in final if o.status is RcptStatus.FAILED]
        deferred = [o for o in final if o.status is RcptStatus.DEFERRED]
        warn = bool(deferred) and not item.warned and now - item.created >= self.config.warn_after
        await self.notify(item, failed, "failed", by_id, remote_mta)
        if success:
            await self.notify(item, [o for o in final if o.status is RcptStatus.DELIVERED], success, by_id, remote_mta)
        if warn:
            await self.notify(item, deferred, "delayed", by_id, remote_mta)
            item.warned = True
        delivered = sum(1 for o in final if o.status is RcptStatus.DELIVERED)
        self.delivered += delivered
        if self.ingest.traffic is not None and item.sender:
            self.ingest.traffic.count(domain_of(item.sender), Flow.DELIVERED, item.size, delivered)
            self.ingest.traffic.count(domain_of(item.sender), Flow.BOUNCED, item.size, len(failed))
        for o in final:
            rcpt = by_id.get(o.rcpt_id)
            log.info("queue.delivery.%s id=%s to=<%s> relay=%s detail=%s", o.status, item.queue_id,
                     rcpt.address if rcpt else "?", remote_mta or "-", o.detail)
        await self.store.settle(self.owner, item.queue_id, final, warned=warn, release=release)

    async def notify(self, item: QueueItem, outcomes: list[RecipientOutcome], action: str,
                     by_id: dict[int, QueueRecipientRow], remote_mta: str) -> None:
        senders: dict[str, list[RecipientOutcome]] = {}  # a recipient with its own return path is told apart
        for o in outcomes:
            own = by_id[o.rcpt_id].sender if o.rcpt_id in by_id else None
            senders.setdefault(own if own is not None else item.sender, []).append(o)
        for sender, told in senders.items():
            await self._notify(item, sender, told, action, by_id, remote_mta)

    async def _notify(self, item: QueueItem, sender: str, outcomes: list[RecipientOutcome], action: str,
                      by_id: dict[int, QueueRecipientRow], remote_mta: str) -> None:
        if not sender or not outcomes:
            return  # never bounce a bounce (RFC 5321 §4.5.5)
        statuses = [RecipientStatus(by_id[o.rcpt_id].address, by_id[o.rcpt_id].orcpt, action,
                                    status_of(o.detail, {"failed": "5.0.0", "delayed": "4.0.0"}.get(action, "2.0.0")), o.detail,
                                    remote_mta)
                    for o in outcomes if o.rcpt_id in by_id and wants(by_id[o.rcpt_id].notify, action)]
        if not statuses:
            return
        original = await asyncio.to_thread(self._headers_or_full, item)
        dsn = build_dsn(reporting_mta=self.hostname, sender=sender, queue_id=item.queue_id,
                        arrival=item.created, statuses=statuses, original=original,
                        ret=item.params.get("RET", ""), envid=item.params.get("ENVID", ""), now=time.time())
        try:
            result = await self.submitter.submit("", [sender], dsn, protocol="dsn")
        except MailError as exc:
            log.warning("queue.dsn.failed id=%s to=<%s> error=%s", item.queue_id, sender, exc.detail)
            return
        log.info("queue.dsn.sent id=%s action=%s to=<%s> recipients=%d local=%d", item.queue_id, action,
                 sender, len(statuses), len(result.delivered))

    def _headers_or_full(self, item: QueueItem) -> bytes:
        with self.blobs.open(item.blob_id) as handle:
            data = handle.read(1024 * 1024 + 1 if item.params.get("RET", "").upper() == "FULL" else 256 * 1024)
        return data
