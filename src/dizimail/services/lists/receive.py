"""What mail to a list's addresses does (called by ``Ingest`` before the message's 250, so that what it
changes is committed when the sender hears "accepted"), and the moderators' actions.

A post goes out as ONE new message: the list's header fields, then the post as it came (its DKIM
signature stays valid: nothing it signed is touched; no subject tag, no footer). It enters through
``Ingest.commit`` with every member as a recipient: one blob, a mailbox row per local member (their own
Sieve rules run: they can file by List-Id), a queue row per remote member carrying its own VERP return
path, its one-click unsubscription link and a DKIM signature of the list's domain over both (RFC 8058
§4 asks that the signature cover List-Unsubscribe and List-Unsubscribe-Post)."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable

from dizimail.config.schema import ListsConfig
from dizimail.interfaces import MetaStore
from dizimail.model.errors import MailError, NotFound
from dizimail.model.lists import ListTarget, MailingList, Member, Pending
from dizimail.model.types import ACTIVE, Account, CommitResult, Quarantined, QueuedRecipient
from dizimail.services.dkim import DkimService, sign
from dizimail.services.folders import Folders
from dizimail.services.ingest import Envelope, Ingest
from dizimail.services.lists import mails
from dizimail.services.lists.addresses import ListKeys, token_hash
from dizimail.services.lists.manage import MailingLists
from dizimail.services.messages import header_summary
from dizimail.services.routing import Kind, Router

log = logging.getLogger("dizimail.lists")
Submit = Callable[..., Awaitable[CommitResult]]
_FAILED = re.compile(rb"(?im)^action:[ \t]*failed")
_PERMANENT = re.compile(rb"(?im)^status:[ \t]*5\.")
HEAD_LIMIT = 64 * 1024


def hard_bounce(report: bytes) -> bool:
    """A delivery status notification (RFC 3464) that says a recipient failed for good (5.x.x)."""
    return bool(_FAILED.search(report) and _PERMANENT.search(report))


def _header(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    return data[:end if end >= 0 else HEAD_LIMIT][:HEAD_LIMIT]


class ListReceiver:
    def __init__(self, lists: MailingLists, keys: ListKeys, ingest: Ingest, router: Router, meta: MetaStore,
                 folders: Folders, dkim: DkimService, submit: Submit, postmaster: Callable[[], Awaitable[str]],
                 hostname: str, config: ListsConfig) -> None:
        self.lists = lists
        self.keys = keys
        self.ingest = ingest
        self.router = router
        self.meta = meta
        self.folders = folders
        self.dkim = dkim
        self.submit = submit
        self.postmaster = postmaster
        self.hostname = hostname
        self.config = config

    # --- from Ingest -----------------------------------------------------------------------------------
    async def receive(self, envelope: Envelope, read: Callable[[], Awaitable[bytes]], start: bytes) -> None:
        """Each list address the message was sent to (``read``: the whole message; ``start``: its first
        64 KiB); raises MailError (the message is refused for now, the client retries) when a post could
        not be committed."""
        data: bytes | None = None
        for _rcpt, target in envelope.lists:
            role, mlist = target.role, target.mlist
            if role == "post":
                if data is None:
                    data = await read()
                await self.post(mlist, envelope.sender, data)
            elif role in ("subscribe", "unsubscribe"):
                await self.request(mlist, role, envelope.sender)
            elif role == "confirm":
                await self.confirm(mlist, target.arg)
            elif role in ("approve", "reject"):
                entry_id = self.keys.verify(target)
                if entry_id is not None:
                    await self._moderate(mlist, role, entry_id, f"mail from <{envelope.sender}>")
            elif role == "bounce":
                await self.bounce(target, start)
            else:  # "bounces": a bounce of something the list sent that names no member (a confirmation ...)
                log.info("list.bounce.unattributed list=%s from=<%s>", mlist.address, envelope.sender)

    # --- posts -----------------------------------------------------------------------------------------
    async def post(self, mlist: MailingList, poster: str, data: bytes) -> None:
        head = _header(data)
        if re.search(rb"(?im)^list-id:[^\r\n]*<" + re.escape(mlist.list_id.encode()) + rb">", head):
            log.warning("list.loop list=%s from=<%s>: the post already went through this list; dropped",
                        mlist.address, poster)
            return
        if not await self.lists.may_post(mlist, poster):
            await self.hold(mlist, poster, data)
            return
        result = await self.distribute(mlist, data)
        log.info("list.posted list=%s from=<%s> local=%d queued=%d", mlist.address, poster, len(result[0].delivered),
                 result[1])

    async def distribute(self, mlist: MailingList, data: bytes) -> tuple[CommitResult, int]:
        """The post to every active member: (the commit's result, how many remote copies were queued)."""
        members = await self.lists.store.members(mlist.id, active_only=True)
        envelope = Envelope(sender=self.keys.command(mlist, "bounces"))
        own: dict[int, Member] = {}  # account id → the member row that reached it
        remote: dict[str, Member] = {}
        for member in members:
            accounts, elsewhere = await self._reached(member)
            for account in accounts:
                if account.id not in own:
                    own[account.id] = member
                    envelope.local.append((account.address, account))
            for address in elsewhere:
                remote.setdefault(address, member)
        envelope.extra = {account.address: self.keys.member_lines(mlist, account.address)
                          for account_id, (_, account) in zip(own, envelope.local, strict=True)
                          if own[account_id].address == account.address}
        blob = self.keys.header(mlist) + data
        envelope.remote = await self._remote(mlist, remote, blob)
        if mlist.archive:
            envelope.archive = await self._archive(mlist)
        if not envelope.count and envelope.archive is None:
            return CommitResult(delivered=(), refused=()), 0
        reception = self.ingest.begin()
        try:
            reception.write(blob)
        except BaseException:
            reception.abort()
            raise
        return await self.ingest.commit(reception, envelope), len(envelope.remote)

    async def _reached(self, member: Member) -> tuple[list[Account], list[str]]:
        """The local accounts and the remote addresses a member stands for (aliases expanded, once)."""
        if member.address.startswith("@"):
            return [a for a in await self.meta.list_accounts(member.address[1:]) if a.active], []
        resolution = await self.router.resolve(member.address)
        if resolution.kind not in (Kind.LOCAL, Kind.REMOTE):  # unknown, suspended, a list, a holding box
            return [], []
        return resolution.accounts, resolution.remote

    async def _remote(self, mlist: MailingList, remote: dict[str, Member], blob: bytes) -> list[QueuedRecipient]:
        """Each remote member's queue row: its VERP return path, and (a direct member) its unsubscription
        fields signed with the list domain's DKIM key."""
        if not remote:
            return []
        key = await self.dkim.key_for(mlist.address)

        def rows() -> list[QueuedRecipient]:
            out = []
            for address, member in remote.items():
                direct = member.address == address
                lines = self.keys.member_lines(mlist, address) if direct else b""
                signature = b""
                if key is not None:
                    try:
                        signature = sign(key, lines + blob)
                    except Exception as exc:  # unsigned rather than not sent
                        log.warning("dkim.sign.failed list=%s error=%s", mlist.address, exc)
                sender = self.keys.signed(mlist, "bounce", member.id) if direct else None
                out.append(QueuedRecipient(address, sender=sender, prefix=signature + lines))
            return out
        return await asyncio.to_thread(rows)

    async def _archive(self, mlist: MailingList) -> tuple[Account, str] | None:
        account = await self.meta.get_account(mlist.archive)
        if account is None or account.status != ACTIVE:
            log.warning("list.archive.missing list=%s archive=%s", mlist.address, mlist.archive)
            return None
        if all(b.name != mlist.archive_folder for b in await self.folders.list(account)):
            try:
                await self.folders.create(account, mlist.archive_folder)
            except MailError:  # made by another post at the same moment
                pass
        return account, mlist.archive_folder

    async def hold(self, mlist: MailingList, poster: str, data: bytes) -> Quarantined:
        """Into the moderation queue (a quarantine entry of kind ``list``), and a request to each moderator."""
        subject, from_ = header_summary(_header(data) + b"\r\n\r\n")
        entry = await self.ingest.keep(data, poster, (mlist.address,), kind="list", reason=mlist.address,
                                       subject=subject, from_=from_, keep=self.ingest.quarantine_keep)
        moderators = list(mlist.moderators) or [await self.postmaster()]
        approve, reject = self.keys.signed(mlist, "approve", entry.id), self.keys.signed(mlist, "reject", entry.id)
        for moderator in moderators:
            await self._send(mlist, moderator, mails.moderation_request(
                mlist, moderator, self.keys.command(mlist, "bounces"), self.hostname, entry.id, poster, subject,
                from_, len(data), approve, reject, data))
        log.info("list.held list=%s entry=%d from=<%s> moderators=%d", mlist.address, entry.id, poster,
                 len(moderators))
        return entry

    async def approve(self, address: str, entry_id: int, by: str) -> int:
        """Send a held post to the members; how many local copies were stored."""
        mlist, _entry = await self.lists.held_post(address, entry_id)
        return await self._moderate(mlist, "approve", entry_id, by)

    async def reject(self, address: str, entry_id: int, by: str, reason: str = "") -> None:
        mlist, _entry = await self.lists.held_post(address, entry_id)
        await self._moderate(mlist, "reject", entry_id, by, reason)

    async def _moderate(self, mlist: MailingList, action: str, entry_id: int, by: str, reason: str = "") -> int:
        try:
            mlist, entry = await self.lists.held_post(mlist.address, entry_id)
        except NotFound:
            log.info("list.moderate.gone list=%s entry=%d action=%s by=%s", mlist.address, entry_id, action, by)
            return 0
        delivered = 0
        if action == "approve":
            # The copies are committed before the entry goes: a crash between sends the post twice
            # when it is approved again, never not at all.
            result, _queued = await self.distribute(mlist, await self.ingest.held_bytes(entry))
            delivered = len(result.delivered)
        elif entry.sender:
            await self._send(mlist, entry.sender, mails.rejected(mlist, entry.sender, self.keys.command(mlist, "bounces"),
                                                                 self.hostname, entry.subject, reason))
        await self.lists.quarantine.delete_quarantined(entry.id)
        log.info("list.moderated list=%s entry=%d action=%s by=%s", mlist.address, entry_id, action, by)
        return delivered

    # --- subscriptions ---------------------------------------------------------------------------------
    async def request(self, mlist: MailingList, action: str, address: str) -> None:
        """A confirmation mail to ``address`` (the envelope sender of the request)."""
        if not address:
            return
        address = address.lower()
        member = await self.lists.store.is_member(mlist.id, address)
        if (action == "subscribe") == member:
            log.info("list.%s.noop list=%s address=<%s>", action, mlist.address, address)
            return
        token = secrets.token_hex(16)
        pending = Pending(mlist.id, action, address, time.time() + self.config.confirm_keep)
        if not await self.lists.store.put_pending(token_hash(token), pending):
            log.info("list.%s.again list=%s address=<%s>: a confirmation was sent already", action, mlist.address,
                     address)
            return
        confirm = self.keys.command(mlist, "confirm", token)
        await self._send(mlist, address, mails.confirm_request(
            mlist, action, address, confirm, self.keys.command(mlist, "bounces"), self.hostname,
            self.config.confirm_keep / 86400))
        log.info("list.%s.asked list=%s address=<%s>", action, mlist.address, address)

    async def confirm(self, mlist: MailingList, token: str) -> None:
        pending = await self.lists.store.take_pending(token_hash(token), time.time())
        if pending is None or pending.list_id != mlist.id:
            log.info("list.confirm.unknown list=%s", mlist.address)
            return
        if pending.action == "subscribe":
            await self.lists.store.add_members(mlist.id, [pending.address], time.time())
        else:
            await self.lists.store.remove_members(mlist.id, [pending.address])
        log.info("list.%s.confirmed list=%s address=<%s>", pending.action, mlist.address, pending.address)
        await self._send(mlist, pending.address, mails.confirmed(mlist, pending.action, pending.address,
                                                                 self.keys.command(mlist, "bounces"), self.hostname))

    async def one_click(self, list_address: str, member: str, mac: str) -> bool:
        """RFC 8058: a POST to the link in List-Unsubscribe removes the member at once (no confirmation:
        the link itself, signed, is the proof). False when the link is not valid."""
        try:
            mlist = await self.lists.get(list_address)
        except NotFound:
            return False
        if not self.keys.verify_unsubscribe(mlist, member, mac):
            return False
        removed = await self.lists.store.remove_members(mlist.id, [member])
        log.info("list.unsubscribe.one_click list=%s member=<%s> removed=%d", mlist.address, member, removed)
        return True

    # --- bounces ---------------------------------------------------------------------------------------
    async def bounce(self, target: ListTarget, report: bytes) -> None:
        member_id = self.keys.verify(target)
        if member_id is None:
            return
        if not hard_bounce(report):
            log.info("list.bounce.soft list=%s member=%d", target.mlist.address, member_id)
            return
        member = await self.lists.store.record_bounce(member_id, time.time(), self.config.bounce_forget,
                                                      target.mlist.bounce_limit)
        if member is None:
            return
        log.info("list.bounce.hard list=%s member=<%s> bounces=%d status=%s", target.mlist.address, member.address,
                 member.bounces, member.status)

    async def _send(self, mlist: MailingList, to: str, data: bytes) -> None:
        try:
            await self.submit(self.keys.command(mlist, "bounces"), [to], data, protocol="list")
        except MailError as exc:
            log.warning("list.mail.failed list=%s to=<%s> error=%s", mlist.address, to, exc.detail or exc.public_key)
