"""Webmail's writing (issue #13): a new message, a reply (to the sender, or to all), a forward; sent as
a logged-in user's submission is (services.submit, mode ``submission`` with the account: the policy's
may-send-as, size and recipient limits, the DKIM signature of the user's domain), then a copy kept in the
user's Sent folder (\\Seen), and the original of a reply marked \\Answered, for every client to see.

The message is built with the stdlib ``email`` package (policy SMTP): a header value with a line break is
refused, never folded into a second field; From is always the user's own address and name."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email import message_from_bytes
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, make_msgid

from dizimail.model.errors import InvalidInput, NotFound
from dizimail.model.types import Account
from dizimail.services.accounts import AccountService, normalize_address
from dizimail.services.folders import Folders
from dizimail.services.ingest import Ingest
from dizimail.services.mailstore import Mailstore
from dizimail.services.policy.facts import Mode
from dizimail.services.queue import QueueService
from dizimail.services.richtext import clean_compose, html_text
from dizimail.services.submit import Submitter
from dizimail.services.webmail import Attachment, MailReader, Opened, safe_filename, shown_header

log = logging.getLogger("dizimail.webmail")
MAX_RECIPIENTS = 100
MAX_SUBJECT = 998
MAX_BODY = 1_000_000
MAX_FILES = 20
MAX_IDENTITIES = 50
PRIORITIES = {"high": ("1 (Highest)", "high"), "low": ("5 (Lowest)", "low")}
HTML_DOC = '<!doctype html><html><head><meta charset="utf-8"></head><body>{}</body></html>\n'
_PREFIX = re.compile(r"^\s*((re|fwd?|回复|答复|转发)\s*[:：]\s*)+", re.IGNORECASE)


@dataclass(frozen=True)
class Draft:
    to: str = ""
    cc: str = ""
    bcc: str = ""
    subject: str = ""
    body: str = ""
    in_reply_to: str = ""
    references: str = ""
    answers: tuple[str, int] | None = None  # (folder, uid) of the message replied to
    draft_uid: int = 0  # the saved draft (in Drafts) this one replaces
    keep: tuple[int, ...] = ()  # the attachments of that draft (their part numbers) that go on with it
    html: str = ""  # written in the rich-text editor: this HTML (cleaned), and ``body`` made from it
    priority: str = ""  # "high", "low" or "" (normal)
    receipt: bool = False  # asks for a read receipt (MDN, RFC 8098)
    send_at: float | None = None  # held in the queue until then (FUTURERELEASE)
    original: tuple[str, int] | None = None  # (folder, uid) of a message forwarded as an attachment
    sender: str = ""  # the identity it goes from: one of :meth:`MailSender.identities` ("" the user's own)


@dataclass(frozen=True)
class Scheduled:
    """A message of the user's waiting in the queue until ``at``."""

    queue_id: str
    at: float
    recipients: tuple[str, ...]
    subject: str


@dataclass(frozen=True)
class Upload:
    """A file to send with a message."""

    filename: str
    content_type: str
    data: bytes


def _listed(people: list[tuple[str, str]]) -> str:
    return ", ".join(f'"{n}" <{a}>' if n else a for n, a in people if a)


def _subject(prefix: str, subject: str) -> str:
    return f"{prefix} {_PREFIX.sub('', subject)}".strip()


def _quoted(original: Opened) -> str:
    who = _listed(original.sender[:1]) or "?"
    lines = original.text.splitlines() or [""]
    return "\n\n" + f"{original.date}, {who}:\n" + "\n".join("> " + line for line in lines[:5000]) + "\n"


def _check_sizes(draft: Draft, files: list[Upload] | None) -> None:
    if len(draft.subject) > MAX_SUBJECT or len(draft.body) > MAX_BODY:
        raise InvalidInput("bad_text")
    if len(files or []) > MAX_FILES:
        raise InvalidInput("too_many_files", f"{len(files or [])} > {MAX_FILES}")


def recipients(text: str) -> list[str]:
    """The addresses of an address list as a user types it (commas, names, angle brackets); InvalidInput
    for one that is no address."""
    out = []
    for _name, address in getaddresses([text.replace("；", ",").replace("，", ",").replace(";", ",")]):
        if address:
            out.append(normalize_address(address))
    return out


class MailSender:
    def __init__(self, reader: MailReader, mailstore: Mailstore, folders: Folders, submitter: Submitter,
                 ingest: Ingest, hostname: str, release_max: float = 7 * 86400.0,
                 accounts: AccountService | None = None, queue: QueueService | None = None) -> None:
        self.accounts = accounts
        self.queue = queue  # the outbound queue: the user's messages waiting to be sent later
        self.release_max = release_max  # smtp.future_release_max: how far ahead a message may be sent
        self.reader = reader
        self.mailstore = mailstore
        self.folders = folders
        self.submitter = submitter
        self.ingest = ingest
        self.hostname = hostname

    @property
    def max_size(self) -> int:
        """The largest message this server takes (``limits.max_message_size``): what attachments may add up to."""
        return self.submitter.policy.max_size

    async def identities(self, account: Account) -> list[str]:
        """The addresses the user may send from (what the policy's may-send-as lets through): their own, the
        aliases that reach them, and their address in the domains that are aliases of theirs."""
        out = [account.address]
        if self.accounts is None:
            return out
        local, _, domain = account.address.rpartition("@")
        out += sorted(a.address for a in await self.accounts.list_aliases(domain) if account.address in a.targets)
        out += sorted(f"{local}@{d.name}" for d in await self.accounts.list_domains() if d.alias_of == domain)
        return list(dict.fromkeys(out))[:MAX_IDENTITIES]

    async def scheduled(self, account: Account) -> list[Scheduled]:
        """The user's messages waiting in the queue for their sending time (send later), soonest first."""
        if self.queue is None:
            return []
        mine, now, out = set(await self.identities(account)), time.time(), []
        for entry in await self.queue.list():
            if entry.sender.lower() in mine and entry.recipients and all(
                    r.attempts == 0 and r.next_attempt > now for r in entry.recipients):
                try:
                    item = await self.queue.show(entry.queue_id)
                    head = shown_header(await self.queue.headers(item, 16 * 1024))
                except NotFound:
                    continue  # sent meanwhile
                out.append(Scheduled(entry.queue_id, min(r.next_attempt for r in entry.recipients),
                                     tuple(r.address for r in entry.recipients), (head.get("subject") or [""])[0]))
        return sorted(out, key=lambda s: s.at)

    async def cancel(self, account: Account, queue_id: str) -> None:
        """Take back a message waiting for its sending time (its copy stays in Sent)."""
        if queue_id not in {s.queue_id for s in await self.scheduled(account)} or self.queue is None:
            raise NotFound("unknown_queue_id", queue_id)
        await self.queue.delete(queue_id)
        log.info("webmail.cancelled user=%s id=%s", account.address, queue_id)

    async def receipt(self, account: Account, folder: str, uid: int, send: bool) -> bool:
        """Answer a message's read-receipt request (Disposition-Notification-To, RFC 8098): ``send`` one, or
        not; either way the message gets the $MDNSent keyword (RFC 3503), so that no client asks again.
        Whether one was sent."""
        original = await self.reader.open(account, folder, uid)
        view = await self.mailstore.select(account, folder, readonly=False)
        if send and original.receipt_to and "$MDNSent" not in original.flags:
            data = await asyncio.to_thread(self._receipt, account, original)
            await self.submitter.submit("", [original.receipt_to], data, protocol="HTTPS", account=account,
                                        mode=Mode.SUBMISSION)
            log.info("webmail.receipt user=%s to=%s", account.address, original.receipt_to)
        await self.mailstore.store(view, [uid], "+", ("$MDNSent",))
        return send and bool(original.receipt_to)

    def _receipt(self, account: Account, original: Opened) -> bytes:
        """The MDN: multipart/report with a bilingual text and the message/disposition-notification part."""
        local, _, domain = account.address.rpartition("@")
        message = EmailMessage(policy=SMTP)
        try:
            message["From"] = Address(account.name or "", local, domain)
            message["To"] = original.receipt_to
            message["Subject"] = f"已读 / Read: {original.subject}"[:MAX_SUBJECT]
            message["Date"] = format_datetime(datetime.now(UTC))
            message["Message-ID"] = make_msgid(domain=domain or self.hostname)
            when = original.date or "?"
            message.set_content(f"您于 {when} 发给 {account.address} 的邮件“{original.subject}”已被阅读。\n\n"
                                f"The message \"{original.subject}\" you sent to {account.address} on {when} was "
                                "displayed.\n", charset="utf-8")
            message.make_mixed()
            message.set_type("multipart/report")
            message.set_param("report-type", "disposition-notification")
            fields = [f"Reporting-UA: {self.hostname}; dizimail webmail", f"Final-Recipient: rfc822; {account.address}"]
            if original.message_id:
                fields.append(f"Original-Message-ID: {original.message_id}")
            fields.append("Disposition: manual-action/MDN-sent-manually; displayed")
            part = EmailMessage(policy=SMTP)
            part["Content-Type"] = "message/disposition-notification"
            part.set_payload("\r\n".join(fields) + "\r\n")
            message.attach(part)
            return message.as_bytes()
        except (ValueError, TypeError) as exc:
            raise InvalidInput("bad_text", str(exc)[:200]) from None

    async def answer(self, account: Account, folder: str, uid: int, how: str) -> Draft:
        """The draft of a reply (``how``: ``reply``, ``all``) or of a forward (``forward`` inline, ``attach``
        as an attachment) of a message."""
        original = await self.reader.open(account, folder, uid)
        if how == "attach":
            return Draft(subject=_subject("Fwd:", original.subject), original=(folder, uid))
        if how == "forward":
            head = [f"From: {_listed(original.sender)}", f"Date: {original.date}", f"Subject: {original.subject}",
                    f"To: {_listed(original.to)}"]
            body = "\n\n---------- Forwarded message / 转发的邮件 ----------\n" + "\n".join(head) + "\n\n" + \
                original.text
            return Draft(subject=_subject("Fwd:", original.subject), body=body)
        to = original.reply_to or original.sender
        cc: list[tuple[str, str]] = []
        if how == "all":
            mine = account.address.lower()
            seen = {a.lower() for _n, a in to} | {mine}
            for name, address in [*original.to, *original.cc]:
                if address.lower() not in seen:
                    seen.add(address.lower())
                    cc.append((name, address))
        references = " ".join(x for x in (original.references, original.message_id) if x)[-8000:]
        return Draft(to=_listed(to), cc=_listed(cc), subject=_subject("Re:", original.subject),
                     body=_quoted(original), in_reply_to=original.message_id, references=references,
                     answers=(folder, uid))

    async def _drafts(self, account: Account) -> str:
        """The user's Drafts folder (made, special-use \\Drafts, if the user has none)."""
        boxes = await self.folders.list(account)
        found = next((b.name for b in boxes if b.special_use == "\\Drafts"), None)
        if found is not None:
            return found
        names = {b.name for b in boxes}
        return (await self.folders.create(account, "Drafts" if "Drafts" not in names else "Drafts (webmail)",
                                          "\\Drafts")).name

    async def reopen(self, account: Account, uid: int) -> tuple[Draft, list[Attachment]]:
        """A saved draft as the compose form shows it again, with its attachments (kept unless unchecked)."""
        saved = await self.reader.open(account, await self._drafts(account), uid)
        return Draft(to=_listed(saved.to), cc=_listed(saved.cc), bcc=_listed(saved.bcc), subject=saved.subject,
                     body=saved.text.rstrip("\n"), in_reply_to=saved.in_reply_to, references=saved.references,
                     draft_uid=uid, keep=tuple(a.index for a in saved.attachments),
                     html=clean_compose(saved.html) if saved.html else "",
                     sender=saved.sender[0][1] if saved.sender and saved.sender[0][1] != account.address else "",
                     priority=saved.priority, receipt=bool(saved.receipt_to), send_at=saved.send_at), saved.attachments

    async def _extra(self, account: Account, draft: Draft) -> list[Upload]:
        """The message forwarded as an attachment, and the attachments kept from the draft being replaced."""
        out = []
        if draft.original is not None:
            try:
                view = await self.mailstore.select(account, draft.original[0], readonly=True)
                entry = (await view.load([draft.original[1]])).get(draft.original[1])
            except NotFound:
                entry = None
            if entry is not None:
                out.append(Upload(safe_filename(draft.subject, "message")[:80] + ".eml", "message/rfc822",
                                  await self.mailstore.read_message(entry)))
        return out + await self._kept(account, draft)

    async def _kept(self, account: Account, draft: Draft) -> list[Upload]:
        """The attachments of the draft being replaced that the user kept."""
        if not draft.draft_uid or not draft.keep:
            return []
        drafts = await self._drafts(account)
        out = []
        for index in draft.keep[:MAX_FILES]:
            try:
                data, kind, name = await self.reader.part(account, drafts, draft.draft_uid, index)
            except NotFound:
                continue  # the draft went meanwhile (sent or deleted elsewhere)
            out.append(Upload(name, kind, data))
        return out

    async def _drop_draft(self, account: Account, uid: int) -> None:
        if uid:
            try:
                view = await self.mailstore.select(account, await self._drafts(account), readonly=False)
                if view.has(uid):
                    await self.mailstore.store(view, [uid], "+", ("\\Deleted",))
                    await self.mailstore.expunge_uids(view, [uid])
            except NotFound:
                pass

    async def save_draft(self, account: Account, draft: Draft, files: list[Upload] | None = None) -> int:
        """Keep ``draft`` (with ``files`` and the kept attachments of the draft it replaces) in Drafts, flagged
        \\Draft, as an IMAP client saves one; the draft it replaces goes once the new one is stored. Its UID."""
        _check_sizes(draft, files)
        files = [*(files or []), *await self._extra(account, draft)][:MAX_FILES]
        data = await asyncio.to_thread(self._build, account, draft, files, True)
        if len(data) > self.max_size:
            raise InvalidInput("message_too_big", f"{len(data)} > {self.max_size}")
        result = await self.ingest.append(account, await self._drafts(account), data, ("\\Draft", "\\Seen"), None)
        await self._drop_draft(account, draft.draft_uid)
        return result.uids[0] if result.uids else 0

    async def send(self, account: Account, draft: Draft, files: list[Upload] | None = None) -> int:
        """Send ``draft`` (with ``files`` attached) from the user's own address; how many recipients took it.
        Raises InvalidInput for a bad field, and what the policy refuses (as over SMTP: too big ...). A draft
        it was saved as goes from Drafts once it is sent."""
        to, cc, bcc = recipients(draft.to), recipients(draft.cc), recipients(draft.bcc)
        everyone = list(dict.fromkeys([*to, *cc, *bcc]))
        if not everyone:
            raise InvalidInput("no_recipients")
        if len(everyone) > MAX_RECIPIENTS:
            raise InvalidInput("too_many_addresses", f"{len(everyone)} > {MAX_RECIPIENTS}")
        _check_sizes(draft, files)
        if draft.sender and draft.sender not in await self.identities(account):
            raise InvalidInput("not_your_address", draft.sender)
        if draft.send_at is not None and not time.time() < draft.send_at <= time.time() + self.release_max:
            raise InvalidInput("future_release_too_far" if draft.send_at > time.time() else "send_at_past")
        files = [*(files or []), *await self._extra(account, draft)][:MAX_FILES]
        data = await asyncio.to_thread(self._build, account, replace(draft, to=", ".join(to), cc=", ".join(cc)),
                                       files)
        result = await self.submitter.submit(draft.sender or account.address, everyone, data, protocol="HTTPS",
                                             account=account,
                                             mode=Mode.SUBMISSION, release_at=draft.send_at)
        await self._keep_sent(account, data)
        await self._drop_draft(account, draft.draft_uid)
        if draft.answers is not None:
            try:
                view = await self.mailstore.select(account, draft.answers[0], readonly=False)
                if view.has(draft.answers[1]):
                    await self.mailstore.store(view, [draft.answers[1]], "+", ("\\Answered",))
            except NotFound:
                pass  # the folder went meanwhile
        log.info("webmail.sent user=%s rcpts=%d local=%d", account.address, len(everyone), len(result.delivered))
        return len(everyone)

    def _build(self, account: Account, draft: Draft, files: list[Upload], keep_bcc: bool = False) -> bytes:
        message = EmailMessage(policy=SMTP)
        local, _, domain = (draft.sender or account.address).rpartition("@")
        try:
            message["From"] = Address(account.name or "", local, domain)
            if draft.to or not keep_bcc:
                message["To"] = draft.to or "undisclosed-recipients:;"
            if draft.cc:
                message["Cc"] = draft.cc
            if keep_bcc and draft.bcc:  # a draft keeps its Bcc; a message sent never carries it
                message["Bcc"] = draft.bcc
            if keep_bcc and draft.send_at is not None:  # and when it is to go (only a draft: read back here)
                message["X-Dizimail-Send-At"] = f"{draft.send_at:.0f}"
            message["Subject"] = draft.subject
            message["Date"] = format_datetime(datetime.now(UTC))
            message["Message-ID"] = make_msgid(domain=domain or self.hostname)
            if draft.in_reply_to:
                message["In-Reply-To"] = draft.in_reply_to
            if draft.references:
                message["References"] = draft.references
            message["User-Agent"] = "dizimail webmail"
            if draft.priority in PRIORITIES:
                message["X-Priority"], message["Importance"] = PRIORITIES[draft.priority]
            if draft.receipt:
                message["Disposition-Notification-To"] = str(Address(account.name or "", local, domain))
            html = clean_compose(draft.html) if draft.html.strip() else ""
            body = html_text(html) if html else draft.body.replace("\r\n", "\n")
            message.set_content(body if body.endswith("\n") else body + "\n", charset="utf-8",
                                cte="base64" if not body.isascii() else "7bit")
            if html:  # multipart/alternative: the text first, the HTML the better (RFC 2046 §5.1.4)
                message.add_alternative(HTML_DOC.replace("{}", html), subtype="html", charset="utf-8", cte="base64")
            for upload in files:
                if upload.content_type == "message/rfc822":  # a forwarded message, whole
                    message.add_attachment(message_from_bytes(upload.data, policy=SMTP), filename=safe_filename(
                        upload.filename, "message.eml"))
                    continue
                maintype, _, subtype = upload.content_type.partition("/")
                if not maintype.isascii() or not subtype or not (maintype + subtype).replace("-", "").replace(
                        ".", "").replace("+", "").isalnum():
                    maintype, subtype = "application", "octet-stream"
                name = safe_filename(upload.filename, "attachment")
                if maintype.lower() == "text":
                    try:  # a text file goes as text in UTF-8, readable by every client
                        message.add_attachment(upload.data.decode("utf-8"), subtype=subtype.lower(), charset="utf-8",
                                               cte="base64", filename=name)
                        continue
                    except UnicodeDecodeError:
                        maintype, subtype = "application", "octet-stream"
                message.add_attachment(upload.data, maintype=maintype.lower(), subtype=subtype.lower(), filename=name)
            return message.as_bytes()
        except (ValueError, TypeError) as exc:  # a line break in a header field, a malformed address
            raise InvalidInput("bad_text", str(exc)[:200]) from None

    async def _keep_sent(self, account: Account, data: bytes) -> None:
        boxes = await self.folders.list(account)
        sent = next((b.name for b in boxes if b.special_use == "\\Sent"), None)
        if sent is None:
            return
        try:
            await self.ingest.append(account, sent, data, ("\\Seen",), None)
        except Exception as exc:  # the message went; a full mailbox only loses the copy (logged)
            log.warning("webmail.sent.copy_failed user=%s error=%s", account.address, exc)
