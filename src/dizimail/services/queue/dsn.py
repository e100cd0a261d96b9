"""Delivery status notifications (RFC 3464 multipart/report, RFC 3461 NOTIFY/RET/ENVID/ORCPT).

A human part in Simplified Chinese and English, the machine-readable
message/delivery-status part, and the original headers (or the whole message
with RET=FULL, up to a limit). Never sent to the null sender: a bounce of a
bounce would loop (RFC 5321 §4.5.5).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
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


def build_dsn(*, reporting_mta: str, sender: str, queue_id: str, arrival: float, statuses: list[RecipientStatus],
              original: bytes, ret: str = "", envid: str = "", now: float) -> bytes:
    """The complete DSN message, CRLF line ends, ready for ingest with the null reverse-path."""
    action = statuses[0].action
    zh_subject, en_subject, zh_text, en_text = _TEXT[action]
    boundary = f"=_dsn_{secrets.token_hex(12)}"
    date = format_datetime(datetime.fromtimestamp(now, UTC))
    subject = Header(f"{zh_subject} / {en_subject}", "utf-8").encode()
    human = [f"{zh_text}", ""]
    for s in statuses:
        human.append(f"  <{s.address}>: {s.diagnostic}")
    human += ["", f"{en_text}", ""]
    for s in statuses:
        human.append(f"  <{s.address}>: {s.diagnostic}")
    human += ["", f"-- {reporting_mta} (dizimail), {queue_id}"]
    per_message = [f"Reporting-MTA: dns; {reporting_mta}", f"X-Dizimail-Queue-ID: {queue_id}"]
    if envid:
        per_message.append(f"Original-Envelope-Id: {_xt(envid)}")
    per_message.append(f"Arrival-Date: {format_datetime(datetime.fromtimestamp(arrival, UTC))}")
    blocks = ["\r\n".join(per_message)]
    for s in statuses:
        lines = []
        if s.orcpt:
            kind, _, value = s.orcpt.partition(";")
            lines.append(f"Original-Recipient: {kind}; {_xt(value)}")
        lines += [f"Final-Recipient: rfc822; {s.address}", f"Action: {s.action}", f"Status: {s.status}"]
        if s.remote_mta:
            lines.append(f"Remote-MTA: dns; {s.remote_mta}")
        if s.diagnostic:
            lines.append(f"Diagnostic-Code: smtp; {' '.join(s.diagnostic.split())}")
        lines.append(f"Last-Attempt-Date: {date}")
        blocks.append("\r\n".join(lines))
    if ret.upper() == "FULL" and len(original) <= FULL_LIMIT:
        third_type, third = "message/rfc822", original
    else:
        third_type, third = "text/rfc822-headers", _header_block(original)
    head = [f"From: =?utf-8?b?{_b64('邮件投递系统')}?= <MAILER-DAEMON@{reporting_mta}>", f"To: <{sender}>",
            f"Subject: {subject}", f"Date: {date}", f"Message-ID: <{queue_id}.{secrets.token_hex(4)}@{reporting_mta}>",
            "Auto-Submitted: auto-replied", "MIME-Version: 1.0",
            f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"']
    parts = [
        "\r\n".join(head), "", "This is a MIME-encapsulated delivery status notification.", "",
        f"--{boundary}", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit", "",
        "\r\n".join(human), "",
        f"--{boundary}", "Content-Type: message/delivery-status", "",
        "\r\n\r\n".join(blocks), "",
        f"--{boundary}", f"Content-Type: {third_type}", "", ""]
    text = "\r\n".join(parts).encode("utf-8")
    if not third.endswith(b"\n"):
        third += b"\r\n"
    return text + third + f"\r\n--{boundary}--\r\n".encode()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _xt(value: str) -> str:
    try:
        return xtext_decode(value)
    except SmtpSyntaxError:
        return value
