"""Delivery status notifications (RFC 3464 multipart/report, RFC 3461 NOTIFY/RET/ENVID/ORCPT).

A human part in Simplified Chinese and English, the machine-readable
message/delivery-status part, and the original headers (or the whole message
with RET=FULL, up to a limit). Never sent to the null sender: a bounce of a
bounce would loop (RFC 5321 §4.5.5).
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime

from dizimail.codec.smtp import SmtpSyntaxError, xtext_decode

FULL_LIMIT = 1024 * 1024  # RET=FULL returns at most this much of the original

_TEXT = {
    "failed": ("退信：邮件无法投递", "Undelivered Mail Returned to Sender",
               "很抱歉，您的邮件无法投递给以下收件人，系统已放弃投递。",
               "I'm sorry, your message could not be delivered to the recipients below. This is a permanent "
               "error; I've given up."),
    "delayed": ("延迟通知：邮件尚未投递", "Delayed Mail (still being retried)",
                "您的邮件暂时无法投递给以下收件人。系统仍在重试，无需重新发送；若最终失败，您会收到退信。",
                "Your message could not be delivered to the recipients below yet. Delivery is still being "
                "retried; you do not need to resend it. If it finally fails you will get a bounce."),
    "delivered": ("投递成功通知", "Successful Mail Delivery Report",
                  "您的邮件已成功投递给以下收件人。",
                  "Your message was successfully delivered to the recipients below."),
    "relayed": ("转发通知", "Mail Relayed Report",
                "您的邮件已转交给不支持投递状态通知的服务器，以下收件人不会再有后续通知。",
                "Your message was relayed to a server that does not send delivery notifications; you will get "
                "no further notice for the recipients below."),
}


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    address: str
    orcpt: str | None
    action: str  # failed | delayed | delivered | relayed
    status: str  # RFC 3463, e.g. 5.1.1
    diagnostic: str  # the remote reply or our reason
    remote_mta: str = ""


def wants(notify: str | None, action: str) -> bool:
    """RFC 3461 §4.1: without NOTIFY, failures and delays are reported; NEVER reports nothing."""
    words = {w.strip().upper() for w in (notify or "").split(",") if w.strip()}
    if not words:
        return action in ("failed", "delayed")
    if "NEVER" in words:
        return False
    return {"failed": "FAILURE", "delayed": "DELAY", "delivered": "SUCCESS", "relayed": "SUCCESS"}[action] in words


def status_of(detail: str, default: str) -> str:
    """The RFC 3463 code in "550 5.1.1 ..." or "5.1.1 ...", else ``default``."""
    for word in detail.split()[:2]:
        parts = word.split(".")
        if len(parts) == 3 and all(p.isdigit() for p in parts) and parts[0] in "245":
            return word
    return default


def _header_block(original: bytes) -> bytes:
    end = original.find(b"\r\n\r\n")
    if end < 0:
        end = original.find(b"\n\n")
    return original if end < 0 else original[: end + 2]


def _field(text: str) -> str:
    """One line of printable text for a header field: a remote reply's CR LF, tabs and other controls
    become single spaces (a reply can never add a field of its own)."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _xt(value: str) -> str:
    try:
        return _field(xtext_decode(value))
    except SmtpSyntaxError:
        return _field(value)


def _recipient_address(address: str) -> Address:
    try:
        return Address(addr_spec=address)
    except (ValueError, IndexError, HeaderParseError):  # e.g. a UTF-8 local part (RFC 6531)
        local, _, domain = address.rpartition("@")
        return Address(username=local, domain=domain)


class _Generator(BytesGenerator):
    """Writes a message/rfc822 part given as text (RET=FULL) back as the octets it was made of: the
    original message is returned byte for byte, 8-bit content included."""

    def _encode(self, s: str) -> bytes:
        return s.encode("ascii", "surrogateescape")


def _raw_part(content_type: str, data: bytes) -> EmailMessage:
    part = EmailMessage()
    part["Content-Type"] = content_type
    part.set_payload(data.decode("ascii", "surrogateescape"))
    return part


def _status_part(per_message: list[tuple[str, str]], per_recipient: list[list[tuple[str, str]]]) -> EmailMessage:
    """message/delivery-status (RFC 3464 §2): one block of fields per message, then one per recipient."""
    blocks: list[Message | str] = []
    for fields in [per_message, *per_recipient]:
        block = Message(policy=SMTP)
        for name, value in fields:
            block[name] = value
        blocks.append(block)
    part = EmailMessage()
    part["Content-Type"] = "message/delivery-status"
    part.set_payload(blocks)
    return part


def build_dsn(*, reporting_mta: str, sender: str, queue_id: str, arrival: float, statuses: list[RecipientStatus],
              original: bytes, ret: str = "", envid: str = "", now: float) -> bytes:
    """The complete DSN message, CRLF line ends, ready for ingest with the null reverse-path.

    Built with the stdlib ``email`` package (DESIGN.md §7): every value is a header field value that
    cannot contain a line break, so nothing from the envelope or a remote reply becomes a field."""
    action = statuses[0].action
    zh_subject, en_subject, zh_text, en_text = _TEXT[action]
    date = format_datetime(datetime.fromtimestamp(now, UTC))
    lines = [f"  <{s.address}>: {_field(s.diagnostic)}" for s in statuses]
    human = "\n".join([zh_text, "", *lines, "", en_text, "", *lines, "", f"-- {reporting_mta} (dizimail), {queue_id}"])
    policy = SMTP if sender.isascii() else SMTPUTF8  # a UTF-8 sender's path speaks SMTPUTF8 (RFC 6531)
    msg = EmailMessage(policy=policy)
    msg["From"] = Address("邮件投递系统", "MAILER-DAEMON", reporting_mta)
    msg["To"] = _recipient_address(sender)
    msg["Subject"] = f"{zh_subject} / {en_subject}"
    msg["Date"] = date
    msg["Message-ID"] = f"<{queue_id}.{secrets.token_hex(4)}@{reporting_mta}>"
    msg["Auto-Submitted"] = "auto-replied"
    msg.set_content(human + "\n", charset="utf-8")  # 8bit, or quoted-printable for long lines
    msg.make_mixed()
    msg.set_type("multipart/report")
    msg.set_param("report-type", "delivery-status")
    msg.preamble = "This is a MIME-encapsulated delivery status notification."
    per_message = [("Reporting-MTA", f"dns; {reporting_mta}"), ("X-Dizimail-Queue-ID", queue_id)]
    if envid:
        per_message.append(("Original-Envelope-Id", _xt(envid)))
    per_message.append(("Arrival-Date", format_datetime(datetime.fromtimestamp(arrival, UTC))))
    per_recipient = []
    for s in statuses:
        fields = []
        if s.orcpt:
            kind, _, value = s.orcpt.partition(";")
            fields.append(("Original-Recipient", f"{_field(kind)}; {_xt(value)}"))
        fields += [("Final-Recipient", f"rfc822; {_field(s.address)}"), ("Action", s.action),
                   ("Status", _field(s.status))]
        if s.remote_mta:
            fields.append(("Remote-MTA", f"dns; {_field(s.remote_mta)}"))
        if s.diagnostic:
            fields.append(("Diagnostic-Code", f"smtp; {_field(s.diagnostic)}"))
        fields.append(("Last-Attempt-Date", date))
        per_recipient.append(fields)
    msg.attach(_status_part(per_message, per_recipient))
    if ret.upper() == "FULL" and len(original) <= FULL_LIMIT:
        msg.attach(_raw_part("message/rfc822", original))
    else:
        msg.attach(_raw_part("text/rfc822-headers", _header_block(original)))
    out = io.BytesIO()
    _Generator(out, policy=policy).flatten(msg)
    return out.getvalue()
