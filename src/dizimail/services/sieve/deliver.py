"""Users' Sieve scripts at local delivery (DESIGN.md §2 ``services.delivery.local``; issue #12).

``Ingest`` asks :meth:`SieveDelivery.decide` where each local recipient's copy goes before the message is
made durable. The answer is, per account, the mailboxes and flags of its copies (none: discarded). What
a script sends away (redirects, the rejection of ``reject``, the notice of a failed script) is submitted
first, through the submitter like every message the system writes (CONVENTIONS habit 2); the SMTP reply
comes after both, so a crash in between repeats a redirect and never loses the message (habit 3).

Nothing a script does can lose mail: a script that fails, a ``fileinto`` into a mailbox that does not
exist, a redirect that is refused, all keep the message in INBOX and tell the user (at most once an hour
per account and reason). A message that already passed this account's delivery (its ``Delivered-To``)
is not filtered again: a redirect back to oneself cannot loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dizimail.model.errors import Conflict, MailError
from dizimail.model.types import Account, CommitResult
from dizimail.services.folders import Folders, canonical_name
from dizimail.services.messages import header_summary
from dizimail.services.policy.report import SpamMarks
from dizimail.services.sieve.interpret import Message, Outcome, Seen, TooSlow, VacationReply, run_message
from dizimail.services.sieve.message import BODY_LIMIT
from dizimail.services.sieve.reports import build_notice, build_rejection
from dizimail.services.sieve.scripts import SieveScripts
from dizimail.services.sieve.vacation import build_reply, reply_key, reply_to

if TYPE_CHECKING:
    from dizimail.services.ingest import Envelope, Reception

log = logging.getLogger("dizimail.sieve")
HEAD_LIMIT = 256 * 1024  # of a message, read for its header fields
BODY_READ = HEAD_LIMIT + 4 * BODY_LIMIT  # read for a script with body tests (they see the first 1 MiB of text)
QUICK_HEAD = 16 * 1024  # a header this small is parsed on the event loop …
QUICK_CPU = 0.002  # … and its scripts run there for at most this much processor time per message,
QUICK_SHARE = (0.1, 0.01)  # and at most 10 ms of every 100 ms of the loop in all (many messages at once)
NOTICE_EVERY = 3600.0  # seconds between two notices to one account for one reason
SYSTEM_FLAGS = {f.lower(): f for f in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")}
MAX_FLAG = 100
FLAG_SPECIALS = set('(){%*"\\]')

Submit = Callable[..., Awaitable[CommitResult]]  # services.submit.Submitter.submit
Copies = list[tuple[str | None, tuple[str, ...]]]  # (mailbox, None: INBOX or the Junk folder; flags)


class Rejected(MailError):
    """Every recipient's script refused the message with ``ereject``: refused in the SMTP conversation
    itself, so that no rejection mail goes to a sender who may be forged (RFC 5429 §2.1.1)."""

    def __init__(self, detail: str) -> None:
        super().__init__(False, 550, "5.7.1", "sieve_rejected", detail)


def imap_flags(flags: frozenset[str]) -> tuple[str, ...]:
    """The flags a script set, as IMAP keeps them: system flags in their case, keywords that are atoms
    (RFC 3501 §9 flag-keyword); others are dropped, as Pigeonhole drops them."""
    out = []
    for flag in sorted(flags):
        if flag.startswith("\\"):
            if flag.lower() in SYSTEM_FLAGS:
                out.append(SYSTEM_FLAGS[flag.lower()])
        elif 0 < len(flag) <= MAX_FLAG and all(0x20 < ord(c) < 0x7F and c not in FLAG_SPECIALS for c in flag):
            out.append(flag)
    return tuple(out)


def _passed(head: bytes, address: str) -> bool:
    """Whether the message carries ``Delivered-To: address`` already (it came back through a redirect)."""
    wanted = address.lower().encode()
    for line in head.split(b"\n"):
        if line[:13].lower() == b"delivered-to:" and line[13:].strip().lower() == wanted:
            return True
    return False


@dataclass
class _Follow:
    """What a script sends after deciding: submitted before the copies are stored."""

    redirects: list[tuple[Account, str]] = field(default_factory=list)
    rejections: list[tuple[Account, str]] = field(default_factory=list)
    notices: list[tuple[Account, str]] = field(default_factory=list)
    replies: list[tuple[Account, Message, VacationReply, str]] = field(default_factory=list)  # vacation


class SieveDelivery:
    def __init__(self, scripts: SieveScripts, folders: Folders, hostname: str) -> None:
        self.scripts = scripts
        self.folders = folders
        self.hostname = hostname
        self.submit: Submit | None = None  # set by app (the submitter is built on ingest)
        # (sender, the forwarding user's domain) → the envelope sender a redirect goes out with (SRS)
        self.rewrite: Callable[[str, str], Awaitable[str]] | None = None
        self._noticed: dict[tuple[int, str], float] = {}
        self._quick = (0.0, 0.0)  # (when the window began, loop time spent on scripts in it)

    async def decide(self, envelope: Envelope, reception: Reception, marks: dict[str, SpamMarks]) -> dict[int, Copies]:
        """The copies of each local account whose active script ran; raises :class:`Rejected` when
        every recipient ``ereject``-ed a message going nowhere else. ``marks``: the anti-spam verdict per
        recipient (the spamtest test reads its score)."""
        accounts = {acc.id: acc for _, acc in envelope.local}
        rcpts = {acc.id: rcpt for rcpt, acc in envelope.local}
        programs = await self.scripts.programs(list(accounts))
        if not programs:
            return {}
        whole = any("body" in s.uses for p in programs.values() for s in (p.script, *p.library.values()))
        boxes = {i: frozenset(b.name for b in await self.folders.list(accounts[i])) for i, p in programs.items()
                 if any("mailboxexists" in s.uses for s in (p.script, *p.library.values()))}
        scanned = any(f.check == "antivirus" and f.result == "clean" for f in envelope.findings)
        loop = asyncio.get_running_loop()

        def memory(account_id: int) -> Seen:
            def seen(key: str, seconds: int, last: bool) -> bool:  # called from the scripts' thread
                asked = self.scripts.remember(account_id, key, seconds, refresh=last)
                return asyncio.run_coroutine_threadsafe(asked, loop).result(60)
            return seen

        head = None if whole else reception.head()  # the header is in memory (Reception.start) …
        if head is None:  # … unless it is longer, or the body is tested: read from the spool, off the scripts' thread
            head = await asyncio.to_thread(reception.writer.peek, BODY_READ if whole else HEAD_LIMIT)

        def evaluate(ids: list[int], budget: float | None) -> tuple[dict[int, tuple[Message, Outcome]], list[int]]:
            """The scripts of ``ids`` on the scripts' thread (CPU only: nothing there waits for the disk), or
            with a ``budget`` on the event loop: then also the ids it did not get through."""
            out = {}
            end = None if budget is None else time.thread_time() + budget
            for n, i in enumerate(ids):
                if _passed(head, accounts[i].address):
                    log.info("sieve.loop id=%s user=%s: delivered to them before", reception.queue_id,
                             accounts[i].address)
                    continue
                judged = marks.get(accounts[i].address)
                message = Message.parse(head, envelope.sender, accounts[i].address, reception.size,
                                        boxes.get(i, frozenset()), judged.score if judged is not None else None,
                                        scanned)
                program = programs[i]
                if end is None:
                    out[i] = (message, run_message(program.script, message, program.library, memory(i)))
                    continue
                try:
                    left = end - time.thread_time()
                    if left <= 0:
                        raise TooSlow()
                    out[i] = (message, run_message(program.script, message, program.library, cpu=left, quick=True))
                except TooSlow:
                    return out, ids[n:]
            return out, []
        # Small scripts on a small header run at once, on the loop, within QUICK_CPU for the whole message
        # (a thread hop costs more than they do); past it, or for scripts that read the body or remember
        # (duplicate), the scripts' thread runs them with their whole budget.
        quick = len(head) <= QUICK_HEAD and not whole and not any(
            "duplicate" in s.uses for p in programs.values() for s in (p.script, *p.library.values()))
        began, spent = self._quick
        now = time.monotonic()
        if now - began > QUICK_SHARE[0]:
            began, spent = now, 0.0
        if quick and spent < QUICK_SHARE[1]:
            started = time.thread_time()
            results, slow = evaluate(list(programs), QUICK_CPU)
            spent += time.thread_time() - started
        else:
            results, slow = {}, list(programs)
        self._quick = (began, spent)
        if slow:
            results.update((await self.scripts.off_loop(evaluate, slow, None))[0])
        if not results:
            return {}
        outcomes = {i: o for i, (_m, o) in results.items()}
        if (not envelope.remote and not envelope.hold and len(outcomes) == len(accounts)
                and all(o.reject is not None and o.ereject for o in outcomes.values())):
            raise Rejected(next(iter(outcomes.values())).reject or "")
        follow = _Follow()
        copies = {i: await self._copies(accounts[i], o, follow) for i, o in outcomes.items()}
        for i, (message, outcome) in results.items():
            if outcome.vacation is not None and not outcome.error:
                to = reply_to(message, outcome.vacation, (accounts[i].address, rcpts[i]))
                if to is not None:
                    follow.replies.append((accounts[i], message, outcome.vacation, to))
        await self._send(envelope, reception, head, follow, copies)
        return copies

    async def _copies(self, account: Account, outcome: Outcome, follow: _Follow) -> Copies:
        if outcome.error:
            follow.notices.append((account, outcome.error))
            return [(None, imap_flags(outcome.keep_flags))]
        out: Copies = []
        boxes: set[str] | None = None
        for store in outcome.stores:
            try:
                name = canonical_name(store.mailbox)
            except MailError:
                follow.notices.append((account, f"unusable mailbox name {store.mailbox[:100]!r}"))
                out.append((None, imap_flags(store.flags)))
                continue
            if name == "INBOX":
                out.append((None, imap_flags(store.flags)))
                continue
            if boxes is None:
                boxes = {b.name for b in await self.folders.list(account)}
            if name not in boxes:
                if store.create:
                    try:
                        await self.folders.create(account, name)
                        # subscribed too (as Dovecot's lda_mailbox_autosubscribe): a folder a user's rule made
                        # shows in their mail programs' and the webmail's folder lists
                        await self.folders.subscribe(account, name, True)
                    except Conflict:  # made meanwhile
                        pass
                    except MailError as exc:
                        follow.notices.append((account, f"the mailbox {name[:100]!r} cannot be made: {exc.public_key}"))
                        out.append((None, imap_flags(store.flags)))
                        continue
                    boxes.add(name)
                else:
                    follow.notices.append((account, f"the mailbox {name[:100]!r} does not exist"))
                    out.append((None, imap_flags(store.flags)))
                    continue
            out.append((name, imap_flags(store.flags)))
        follow.redirects += [(account, target) for target in outcome.redirects]
        if outcome.reject is not None:
            follow.rejections.append((account, outcome.reject))
        if outcome.implicit_keep:
            out.append((None, imap_flags(outcome.keep_flags)))
        # One copy per mailbox: a keep after fileinto "INBOX" (both INBOX) is one copy.
        return list({box: (box, flags) for box, flags in out}.values())

    async def _send(self, envelope: Envelope, reception: Reception, head: bytes, follow: _Follow,
                    copies: dict[int, Copies]) -> None:
        if self.submit is None or not (follow.redirects or follow.rejections or follow.notices or follow.replies):
            return
        subject, _ = header_summary(head)
        now = time.time()
        if follow.redirects:
            data = await asyncio.to_thread(reception.writer.peek, reception.size + 1)
            for account, target in follow.redirects:
                sender = envelope.sender
                if self.rewrite is not None:  # SPF at the next server sees our domain, bounces come back
                    sender = await self.rewrite(sender, account.address.rpartition("@")[2])
                try:  # the message as it was, marked as having passed this account (loop detection)
                    await self.submit(sender, [target],
                                      f"Delivered-To: {account.address}\r\n".encode() + data, protocol="sieve")
                    log.info("sieve.redirected id=%s user=%s to=<%s>", reception.queue_id, account.address, target)
                except MailError as exc:
                    log.warning("sieve.redirect.failed id=%s user=%s to=<%s> error=%s", reception.queue_id,
                                account.address, target, exc.detail or exc.public_key)
                    follow.notices.append((account, f"the redirect to {target} was refused"))
                    if not copies[account.id]:
                        copies[account.id].append((None, ()))
        for account, reason in follow.rejections:
            if not envelope.sender:  # never to the null reverse-path (RFC 5429 §2.1)
                continue
            rejection = build_rejection(hostname=self.hostname, sender=envelope.sender, recipient=account.address,
                                        reason=reason, subject=subject, original=head, now=now)
            await self._quietly(reception.queue_id, "", envelope.sender, rejection, "sieve.rejection")
        for account, message, reply, to in follow.replies:
            if await self.scripts.remember(account.id, reply_key(to, reply), reply.period):
                log.info("sieve.vacation.skipped id=%s user=%s to=<%s> (replied within the period)",
                         reception.queue_id, account.address, to)
                continue
            answer = build_reply(message=message, reply=reply, user=account.address, to=to, hostname=self.hostname,
                                 now=now)
            await self._quietly(reception.queue_id, "", to, answer, "sieve.vacation")
            log.info("sieve.vacation.sent id=%s user=%s to=<%s>", reception.queue_id, account.address, to)
        for account, reason in follow.notices:
            if now - self._noticed.get((account.id, reason), 0.0) < NOTICE_EVERY:
                continue
            self._noticed[(account.id, reason)] = now
            if len(self._noticed) > 10_000:
                self._noticed = {k: t for k, t in self._noticed.items() if now - t < NOTICE_EVERY}
            log.warning("sieve.failed id=%s user=%s reason=%s", reception.queue_id, account.address, reason)
            notice = build_notice(hostname=self.hostname, recipient=account.address, reason=reason,
                                  subject=subject, now=now)
            await self._quietly(reception.queue_id, "", account.address, notice, "sieve.notice")

    async def _quietly(self, queue_id: str, sender: str, recipient: str, message: bytes, event: str) -> None:
        assert self.submit is not None
        try:
            await self.submit(sender, [recipient], message, protocol="sieve")
        except MailError as exc:
            log.warning("%s.failed id=%s to=<%s> error=%s", event, queue_id, recipient, exc.detail or exc.public_key)
