"""The quarantine: messages held for a human instead of delivered (infected mail with
``antivirus.action = quarantine``, a spam score past ``antispam.reject_at`` with ``reject_action =
quarantine``). The ingest puts them there (one transaction, like a delivery: nothing is lost and
nothing is in two places); this service lists, shows, releases, deletes and expires them, and sends
the notices (bilingual, from templates an operator may replace: docs/antispam.md).

A release resolves the recipients again and delivers as the message would have been, with the trace
lines it had (Authentication-Results, X-Spam-*); a spam release also teaches the content filter that
the message was ham.

Notices are throttled per addressee: the first goes at once, and whatever is held for the same person
(or the admin) in the next ``quarantine.notice_every`` is told in one digest at its end, so a virus
outbreak of thousands of messages sends each person a notice and a digest per interval, not thousands
of mails. The digests are kept in memory: one lost in a crash leaves the entries in ``quarantine list``."""

from __future__ import annotations

import asyncio
import logging
import string
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from importlib import resources
from pathlib import Path

from dizimail.config.schema import QuarantineConfig
from dizimail.interfaces import BlobStore
from dizimail.interfaces.quarantine import QuarantineStore
from dizimail.model.errors import NotFound
from dizimail.model.types import CommitResult, Quarantined
from dizimail.services.content.filter import ContentFilter
from dizimail.services.ingest import Envelope, Ingest
from dizimail.services.routing import Kind, Router
from dizimail.services.submit import Submitter
from dizimail.util.units import format_size

log = logging.getLogger("dizimail.quarantine")
TEMPLATE_LIMIT = 64 * 1024
AUDIENCES = ("recipients", "sender", "admin")
DIGEST_LINES = 200  # entries listed one by one in a digest; the rest are counted


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _line(text: str, limit: int = 300) -> str:
    """Mail-borne text as one line of a notice: no line breaks or other controls."""
    return "".join(c if c.isprintable() else " " for c in text[:limit])


def digest_line(entry: Quarantined) -> str:
    return (f"  {entry.id:>7}  {_when(entry.created)}  {_line(entry.reason, 80)}  <{_line(entry.sender, 100)}>  "
            f"{_line(entry.subject, 100)}")


def template_values(entry: Quarantined, hostname: str) -> dict[str, str]:
    findings = "\n".join(f"  {check}{'=' + result if result else ''} {points:+g}  {_line(reason)}"
                         for check, result, points, reason in entry.findings) or "  (none)"
    return {"id": str(entry.id), "queue_id": entry.queue_id, "reason": _line(entry.reason), "kind": entry.kind,
            "sender": _line(entry.sender) or "<>", "recipients": _line(", ".join(entry.recipients), 2000),
            "subject": _line(entry.subject), "from": _line(entry.from_) or "-", "size": format_size(entry.size),
            "date": _when(entry.created), "expires": _when(entry.expires), "score": f"{entry.score:.1f}",
            "findings": findings, "hostname": hostname}


class Templates:
    """``quarantine-<audience>.txt``: a ``Subject:`` line, a blank line, the text; ``$name`` fields are
    filled in with values that are data (never read as template text). A file of the same name in the
    operator's directory replaces the built-in one."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def text(self, name: str) -> str:
        if self.directory is not None:
            path = self.directory / name
            try:
                with path.open("rb") as f:
                    return f.read(TEMPLATE_LIMIT).decode("utf-8", "replace")
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("quarantine.template.unreadable path=%s error=%s", path, exc)
        return resources.files("dizimail.i18n").joinpath("templates", name).read_text("utf-8")

    def render(self, name: str, values: dict[str, str]) -> tuple[str, str]:
        """(subject, body) of one template."""
        filled = string.Template(self.text(name)).safe_substitute(values)
        head, _, body = filled.partition("\n\n")
        subject = next((line[8:].strip() for line in head.splitlines() if line.lower().startswith("subject:")), "")
        if not subject:  # no header line: the whole file is the text
            subject, body = f"[Quarantine] {values['reason']}", filled
        return _line(subject, 500), body


def notice(hostname: str, to: Iterable[str], subject: str, body: str, queue_id: str) -> bytes:
    """A notice as a message (auto-submitted, from MAILER-DAEMON: it is never answered or bounced)."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = Address("邮件系统 Mail System", "MAILER-DAEMON", hostname)
    addresses = list(to)
    msg["To"] = addresses[0] if len(addresses) == 1 else "undisclosed-recipients:;"
    msg["Subject"] = subject
    msg["Date"] = datetime.now(UTC)
    msg["Message-ID"] = f"<quarantine.{queue_id}.{time.time_ns()}@{hostname}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body, charset="utf-8")
    return msg.as_bytes()


class Quarantine:
    def __init__(self, store: QuarantineStore, ingest: Ingest, submitter: Submitter, router: Router,
                 blobs: BlobStore, content: ContentFilter, config: QuarantineConfig, hostname: str,
                 templates: Path | None, admin: Callable[[], Awaitable[str]]) -> None:
        self.store = store
        self.ingest = ingest
        self.submitter = submitter
        self.router = router
        self.blobs = blobs
        self.content = content
        self.config = config
        self.hostname = hostname
        self.templates = Templates(templates)
        self.admin = admin
        self.tasks: set[asyncio.Task[None]] = set()
        self._digests: dict[tuple[str, str], list[Quarantined]] = {}  # (audience, addressee) → held since
        self._more: dict[tuple[str, str], int] = {}  # held since beyond DIGEST_LINES: counted, not kept
        self._windows: set[asyncio.Task[None]] = set()

    async def entries(self, limit: int = 10_000) -> list[Quarantined]:
        return await self.store.list_quarantine(limit)

    async def get(self, entry_id: int) -> Quarantined:
        entry = await self.store.get_quarantined(entry_id)
        if entry is None or entry.kind == "list":  # a list's held post: its moderators decide (services.lists)
            raise NotFound("unknown_quarantine_id", str(entry_id))
        return entry

    async def message(self, entry: Quarantined) -> bytes:
        """The held message as it would be delivered: its trace lines, then its bytes."""
        return entry.prefix + await self._held_bytes(entry)

    async def _held_bytes(self, entry: Quarantined) -> bytes:
        def read() -> bytes:
            with self.blobs.open(entry.blob_id) as f:
                return f.read()
        return await asyncio.to_thread(read)

    async def release(self, entry_id: int, learn: bool = True) -> CommitResult:
        """Deliver to the recipients (resolved again: one removed since gets nothing) and forget the entry;
        a message held for its spam score is learnt as ham (``learn``)."""
        entry = await self.get(entry_id)
        envelope = Envelope(sender=entry.sender)
        for rcpt in entry.recipients:
            envelope.add(rcpt.lower(), await self.router.resolve(rcpt.lower()))
        if not envelope.count:
            raise NotFound("unknown_user", f"none of {', '.join(entry.recipients)} exists any more")
        if envelope.lists:  # a post to a mailing list held as spam or a virus: the list takes it
            await self.ingest.release_to_lists(entry, envelope)
            envelope = replace(envelope, lists=[])
            if not envelope.count:
                await self.store.delete_quarantined(entry.id)
                log.info("quarantine.released entry=%d to lists only", entry.id)
                return CommitResult(delivered=(), refused=())
        result = await self.ingest.release(entry, envelope)
        if learn and entry.kind == "spam":
            await self.content.learn_message(entry.blob_id, await self._held_bytes(entry), spam=False)
        return result

    async def delete(self, entry_id: int) -> None:
        await self.get(entry_id)
        if not await self.store.delete_quarantined(entry_id):
            raise NotFound("unknown_quarantine_id", str(entry_id))
        log.info("quarantine.deleted entry=%d", entry_id)

    async def expire(self, now: float | None = None) -> int:
        removed = await self.store.expire_quarantine(time.time() if now is None else now)
        if removed:
            log.info("quarantine.expired removed=%d", removed)
        return removed

    # --- notices ---------------------------------------------------------------------------------------
    async def close(self) -> None:
        """At the node's stop: notices under way finish (5 s at most); digests not yet due are dropped
        (logged; the entries stay in the quarantine)."""
        waiting = sum(len(held) for held in self._digests.values()) + sum(self._more.values())
        if waiting:
            log.info("quarantine.digests.dropped entries=%d (they stay in the quarantine)", waiting)
        for task in list(self._windows):
            task.cancel()
        await asyncio.gather(*self._windows, return_exceptions=True)
        self._digests.clear()
        self._more.clear()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=5)

    def held(self, entry: Quarantined) -> None:
        """The ingest's hook: notices go out in the background (the SMTP reply does not wait for them)."""
        audiences = self.config.notify_virus if entry.kind == "virus" else self.config.notify_spam
        if not audiences:
            return
        task = asyncio.get_running_loop().create_task(self._notify(entry, audiences))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _notify(self, entry: Quarantined, audiences: Iterable[str]) -> None:
        values = template_values(entry, self.hostname)
        for audience in audiences:
            try:
                to = []
                for address in await self._addressees(entry, audience):
                    key = (audience, address.lower())
                    pending = self._digests.get(key)
                    if pending is None:  # nothing told lately: now, and a window opens
                        to.append(address)
                        self._open_window(audience, address)
                    elif len(pending) < DIGEST_LINES:
                        pending.append(entry)
                    else:  # an outbreak: memory stays bounded, the digest says how many more
                        self._more[key] = self._more.get(key, 0) + 1
                if not to:
                    continue
                subject, body = self.templates.render(f"quarantine-{audience}.txt", values)
                await self.submitter.submit("", to, notice(self.hostname, to, subject, body, entry.queue_id))
                log.info("quarantine.notified entry=%d audience=%s rcpts=%d", entry.id, audience, len(to))
            except Exception:  # a notice that cannot go out is logged; the message is held either way
                log.exception("quarantine.notice.failed entry=%d audience=%s", entry.id, audience)

    def _open_window(self, audience: str, address: str) -> None:
        self._digests[(audience, address.lower())] = []
        task = asyncio.get_running_loop().create_task(self._close_window(audience, address))
        self._windows.add(task)
        task.add_done_callback(self._windows.discard)

    async def _close_window(self, audience: str, address: str) -> None:
        """At the end of the interval: one digest of what was held meanwhile (and another window), or
        nothing (and the next notice goes at once)."""
        key = (audience, address.lower())
        while True:
            await asyncio.sleep(self.config.notice_every)
            held = self._digests.get(key) or []
            more = self._more.pop(key, 0)
            if not held:
                self._digests.pop(key, None)
                return
            self._digests[key] = []
            try:
                await self._send_digest(audience, address, held, more)
            except Exception:
                log.exception("quarantine.digest.failed audience=%s entries=%d", audience, len(held))

    async def _send_digest(self, audience: str, address: str, held: list[Quarantined], more: int) -> None:
        lines = [digest_line(e) for e in held]
        if more:
            lines.append(f"  ... {more} more / 另有 {more} 封 (dizimail quarantine list)")
        values = {"count": str(len(held) + more), "entries": "\n".join(lines), "hostname": self.hostname,
                  "first": _when(held[0].created), "last": _when(held[-1].created),
                  "audience": audience, "every": f"{self.config.notice_every / 60:g}"}
        subject, body = self.templates.render("quarantine-digest.txt", values)
        await self.submitter.submit("", [address], notice(self.hostname, [address], subject, body,
                                                         f"digest{held[-1].id}"))
        log.info("quarantine.digest audience=%s entries=%d", audience, len(held))

    async def _addressees(self, entry: Quarantined, audience: str) -> list[str]:
        if audience == "admin":
            return [await self.admin()]
        if audience == "sender":  # only one of our own accounts: a virus's sender address is forged
            if not entry.sender:
                return []
            resolution = await self.router.resolve(entry.sender.lower())
            return [entry.sender] if resolution.kind is Kind.LOCAL and resolution.accounts else []
        local: list[str] = []
        for rcpt in entry.recipients:
            resolution = await self.router.resolve(rcpt.lower())
            local += [a.address for a in resolution.accounts if a.address not in local]
        return local
