"""The mail a Sieve script's actions send back: the rejection of ``reject`` (RFC 5429 §2.1: a message
disposition notification, RFC 8098, "deleted") to the envelope sender, and the short notice a user gets
when their script could not run and the message was kept in INBOX instead. Both in Simplified Chinese
and English, built with the stdlib ``email`` package: text from the message (subject, reason) is only
ever a header value or body text, never a header line of its own."""

from __future__ import annotations

import io
import secrets
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8, Policy
from email.utils import format_datetime

HEADERS_KEPT = 64 * 1024  # of the original message, in the rejection
MAX_REASON = 4000


def _plain(text: str, limit: int) -> str:
    return "".join(c if c.isprintable() or c == "\n" else " " for c in text[:limit]).strip()


def _head(original: bytes) -> bytes:
    head = original[:HEADERS_KEPT]
    for end in (b"\r\n\r\n", b"\n\n"):
        at = head.find(end)
        if at >= 0:
            return head[:at + len(end)]
    return head


def _flatten(msg: EmailMessage, policy: Policy) -> bytes:
    out = io.BytesIO()
    BytesGenerator(out, policy=policy).flatten(msg)
    return out.getvalue()


def build_rejection(*, hostname: str, sender: str, recipient: str, reason: str, subject: str,
                    original: bytes, now: float) -> bytes:
    """RFC 5429 §2.1.1's MDN: human part with the user's reason, the disposition, the original header."""
    policy = SMTP if sender.isascii() and recipient.isascii() else SMTPUTF8
    reason = _plain(reason, MAX_REASON) or "-"
    msg = EmailMessage(policy=policy)
    msg["From"] = Address("邮件投递系统", "MAILER-DAEMON", hostname)
    local, _, domain = sender.rpartition("@")
    msg["To"] = Address("", local, domain) if local and domain else sender
    msg["Subject"] = f"邮件被拒收 / Rejected: {_plain(subject, 200)}"
    msg["Date"] = format_datetime(datetime.fromtimestamp(now, UTC))
    msg["Message-ID"] = f"<{secrets.token_hex(12)}@{hostname}>"
    msg["Auto-Submitted"] = "auto-replied (rejected)"
    msg.set_content(
        f"您发给 <{recipient}> 的邮件被收件人的邮件规则拒收，原因：\n\n{reason}\n\n"
        f"Your message to <{recipient}> was rejected by the recipient's mail rules, for this reason:\n\n{reason}\n",
        charset="utf-8")
    msg.make_mixed()
    msg.set_type("multipart/report")
    msg.set_param("report-type", "disposition-notification")
    mdn = EmailMessage()
    mdn["Content-Type"] = "message/disposition-notification"
    mdn.set_payload(
        f"Reporting-UA: {hostname}; dizimail\r\nFinal-Recipient: rfc822; {_plain(recipient, 500)}\r\n"
        "Disposition: automatic-action/MDN-sent-automatically; deleted\r\n")
    msg.attach(mdn)
    headers = EmailMessage()
    headers["Content-Type"] = "text/rfc822-headers"
    headers.set_payload(_head(original).decode("utf-8", "replace"))
    msg.attach(headers)
    return _flatten(msg, policy)


def build_notice(*, hostname: str, recipient: str, reason: str, subject: str, now: float) -> bytes:
    """To the user: their rules failed on a message, which is in INBOX."""
    policy = SMTP if recipient.isascii() else SMTPUTF8
    reason, subject = _plain(reason, MAX_REASON), _plain(subject, 200)
    msg = EmailMessage(policy=policy)
    msg["From"] = Address("邮件投递系统", "MAILER-DAEMON", hostname)
    local, _, domain = recipient.rpartition("@")
    msg["To"] = Address("", local, domain)
    msg["Subject"] = "邮件规则出错 / Your mail rules failed"
    msg["Date"] = format_datetime(datetime.fromtimestamp(now, UTC))
    msg["Message-ID"] = f"<{secrets.token_hex(12)}@{hostname}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(
        f"您的邮件规则（Sieve）处理邮件「{subject}」时出错，邮件已放入收件箱。\n原因：{reason}\n\n"
        f"Your mail rules (Sieve) failed on the message \"{subject}\"; it was kept in your INBOX.\n"
        f"Reason: {reason}\n", charset="utf-8")
    return _flatten(msg, policy)
