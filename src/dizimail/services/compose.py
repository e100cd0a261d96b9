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
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, make_msgid

from dizimail.model.errors import InvalidInput, NotFound
from dizimail.model.types import Account
from dizimail.services.accounts import normalize_address
from dizimail.services.folders import Folders
from dizimail.services.ingest import Ingest
from dizimail.services.mailstore import Mailstore
from dizimail.services.policy.facts import Mode
from dizimail.services.submit import Submitter
from dizimail.services.webmail import Attachment, MailReader, Opened, safe_filename

log = logging.getLogger("dizimail.webmail")
MAX_RECIPIENTS = 100
MAX_SUBJECT = 998
MAX_BODY = 1_000_000
MAX_FILES = 20
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
                 ingest: Ingest, hostname: str) -> None:
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

    async def answer(self, account: Account, folder: str, uid: int, how: str) -> Draft:
        """The draft of a reply (``how``: ``reply``, ``all``) or of a forward (``forward``) of a message."""
        original = await self.reader.open(account, folder, uid)
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
                     draft_uid=uid, keep=tuple(a.index for a in saved.attachments)), saved.attachments

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
        files = [*(files or []), *await self._kept(account, draft)][:MAX_FILES]
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
        files = [*(files or []), *await self._kept(account, draft)][:MAX_FILES]
        data = await asyncio.to_thread(self._build, account, replace(draft, to=", ".join(to), cc=", ".join(cc)),
                                       files)
        result = await self.submitter.submit(account.address, everyone, data, protocol="HTTPS", account=account,
                                             mode=Mode.SUBMISSION)
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
        local, _, domain = account.address.rpartition("@")
        try:
            message["From"] = Address(account.name or "", local, domain)
            if draft.to or not keep_bcc:
                message["To"] = draft.to or "undisclosed-recipients:;"
            if draft.cc:
                message["Cc"] = draft.cc
            if keep_bcc and draft.bcc:  # a draft keeps its Bcc; a message sent never carries it
                message["Bcc"] = draft.bcc
            message["Subject"] = draft.subject
            message["Date"] = format_datetime(datetime.now(UTC))
            message["Message-ID"] = make_msgid(domain=domain or self.hostname)
            if draft.in_reply_to:
                message["In-Reply-To"] = draft.in_reply_to
            if draft.references:
                message["References"] = draft.references
            message["User-Agent"] = "dizimail webmail"
            body = draft.body.replace("\r\n", "\n")
            message.set_content(body if body.endswith("\n") else body + "\n", charset="utf-8",
                                cte="base64" if not body.isascii() else "7bit")
            for upload in files:
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
