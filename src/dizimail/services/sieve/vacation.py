"""Vacation replies (RFC 5230, RFC 6131): whether a reply goes, to whom, and the reply itself.

A reply goes only to a person who wrote to this user (RFC 5230 §4.5: the user's address, the address the
message came to, or one of ``:addresses`` is in To, Cc, Bcc or their Resent- forms), never to the null
sender, to oneself, to a list, bulk or automatic mail, or to a mailer daemon (§4.6, RFC 3834 §2); and
once per sender and period (``services.sieve.deliver`` keeps the state). The reply comes from the null
reverse-path (§5.1) with ``Auto-Submitted: auto-replied`` (RFC 3834 §5), answers the original's
Message-ID, and its From is the user's own address unless ``:from`` names one of the user's addresses."""

from __future__ import annotations

import hashlib
import io
import secrets
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, getaddresses, parseaddr

from dizimail.services.sieve.interpret import VacationReply
from dizimail.services.sieve.message import Message, decoded

NOT_PERSONS = ("mailer-daemon", "listserv", "majordomo", "owner-", "-request", "postmaster", "noreply", "no-reply")
LIST_FIELDS = ("list-id", "list-help", "list-unsubscribe", "list-subscribe", "list-post", "list-owner",
               "list-archive", "x-list", "mailing-list")
RECIPIENT_FIELDS = ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc")
MAX_REASON = 64 * 1024


def reply_to(message: Message, reply: VacationReply, own: tuple[str, ...]) -> str | None:
    """The envelope sender to answer, or None when no reply may go. ``own``: the user's addresses (the
    account's and the one the message was sent to)."""
    sender = message.sender.strip().lower()
    if not sender or "@" not in sender:
        return None
    mine = {a.lower() for a in (*own, *reply.addresses) if a}
    if sender in mine:
        return None
    local = sender.rpartition("@")[0]
    if any(local.startswith(p) if p.endswith("-") else local.endswith(p) if p.startswith("-") else local == p
           for p in NOT_PERSONS):
        return None
    headers = message.headers
    auto = [v.strip().lower() for v in headers.get("auto-submitted", [])]
    if any(not v.startswith("no") for v in auto):
        return None
    if any(v.strip().lower() in ("bulk", "list", "junk") for v in headers.get("precedence", [])):
        return None
    if any(name in headers for name in LIST_FIELDS):
        return None
    named = {a.lower() for name in RECIPIENT_FIELDS for _n, a in getaddresses(headers.get(name, [])) if a}
    if not named & mine:
        return None
    return message.sender.strip()


def reply_key(sender: str, reply: VacationReply) -> str:
    """One key per sender and vacation action (RFC 5230 §4.2: the handle, or what the action says)."""
    handle = reply.handle or "\0".join((reply.reason, reply.subject, reply.sender, str(reply.mime)))
    return hashlib.sha256(f"vacation\0{sender.lower()}\0{handle}".encode()).hexdigest()


def build_reply(*, message: Message, reply: VacationReply, user: str, to: str, hostname: str, now: float) -> bytes:
    """The reply (RFC 5230 §5): to ``to``, from the user (or ``:from`` when it is one of theirs)."""
    own = {user.lower(), *(a.lower() for a in reply.addresses)}
    _name, chosen = parseaddr(reply.sender) if reply.sender else ("", "")
    sender = chosen if chosen and chosen.lower() in own else user
    policy = SMTP if sender.isascii() and to.isascii() else SMTPUTF8
    original = decoded(message.headers.get("subject", [""])[0])
    subject = reply.subject or f"Auto: {original}"
    msg = EmailMessage(policy=policy)
    local, _, domain = sender.rpartition("@")
    msg["From"] = Address("", local, domain)
    to_local, _, to_domain = to.rpartition("@")
    msg["To"] = Address("", to_local, to_domain)
    msg["Subject"] = "".join(c if c.isprintable() else " " for c in subject[:200])
    msg["Date"] = format_datetime(datetime.fromtimestamp(now, UTC))
    msg["Message-ID"] = f"<{secrets.token_hex(12)}@{hostname}>"
    msg["Auto-Submitted"] = "auto-replied (vacation)"
    msg["Precedence"] = "bulk"
    original_id = message.headers.get("message-id", [""])[0].strip()
    if original_id.startswith("<") and original_id.endswith(">") and len(original_id) < 500 \
            and all(c.isprintable() and not c.isspace() for c in original_id):
        msg["In-Reply-To"] = original_id
        msg["References"] = original_id
    text = reply.reason[:MAX_REASON]
    if reply.mime:  # the reason is a MIME entity (RFC 5230 §4.4): its header and body, as the user wrote them
        head, _, body = text.replace("\r\n", "\n").partition("\n\n")
        content_type = next((line.split(":", 1)[1].strip() for line in head.split("\n")
                             if line.lower().startswith("content-type:")), "text/plain; charset=utf-8")
        if content_type.lower().startswith("text/") and "\r" not in content_type and "\n" not in content_type:
            msg.set_content(body, subtype=content_type.split(";")[0].split("/", 1)[1].strip() or "plain",
                            charset="utf-8")
        else:
            msg.set_content(body, charset="utf-8")
    else:
        msg.set_content(text, charset="utf-8")
    out = io.BytesIO()
    BytesGenerator(out, policy=policy).flatten(msg)
    return out.getvalue()
