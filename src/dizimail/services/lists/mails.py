"""The mails a list sends: confirmation requests, welcome and goodbye, moderation requests, rejections.

Bilingual (Simplified Chinese, then English), built with the stdlib ``email`` package (never f-strings
into header fields). Text from mail (subjects, addresses) goes in as data: one line, printable only."""

from __future__ import annotations

from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from dizimail.model.lists import MailingList

ATTACH_LIMIT = 256 * 1024  # a held post larger than this goes to the moderators as its header only


def line(text: str, limit: int = 200) -> str:
    return "".join(c if c.isprintable() else " " for c in text[:limit])


def _address(text: str) -> Address | str:
    local, _, domain = text.rpartition("@")
    try:
        return Address("", local, domain) if local and domain else text
    except (ValueError, IndexError):
        return text


def _message(mlist: MailingList, sender: str, to: str, subject: str, body: str, hostname: str,
             reply_to: str | None = None) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    local, _, domain = sender.rpartition("@")
    msg["From"] = Address(line(mlist.name or mlist.address, 100), local, domain)
    msg["To"] = _address(to)
    if reply_to:
        rlocal, _, rdomain = reply_to.rpartition("@")
        msg["Reply-To"] = Address("", rlocal, rdomain)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain=hostname)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: vacation replies leave it alone
    msg["List-Id"] = f"<{mlist.list_id}>"
    msg["Precedence"] = "list"
    msg.set_content(body, charset="utf-8", cte="base64")
    return msg


def confirm_request(mlist: MailingList, action: str, address: str, confirm: str, sender: str, hostname: str,
                    days: float) -> bytes:
    """Asks ``address`` to confirm a subscription or unsubscription by replying (to ``confirm``)."""
    join = action == "subscribe"
    zh = "加入" if join else "退出"
    en = "join" if join else "leave"
    body = (f"有人（可能是您自己）请求让 {line(address)} {zh}邮件列表 {mlist.address}。\n"
            f"如确认，请直接回复本邮件（或发一封邮件到 {confirm}）。如不是您的请求，请忽略本邮件。\n"
            f"此确认在 {days:.0f} 天内有效。\n\n"
            f"Someone (perhaps you) asked for {line(address)} to {en} the mailing list {mlist.address}.\n"
            f"To confirm, reply to this message (or write to {confirm}). If you did not ask, ignore it.\n"
            f"The confirmation works for {days:.0f} days.\n")
    subject = f"请确认{zh} {mlist.address} / Confirm: {en} {mlist.address}"
    return _message(mlist, sender, address, subject, body, hostname, reply_to=confirm).as_bytes()


def confirmed(mlist: MailingList, action: str, address: str, sender: str, hostname: str) -> bytes:
    join = action == "subscribe"
    if join:
        body = (f"您已加入邮件列表 {mlist.address}。发给该地址的邮件会送达所有成员。\n"
                f"退出：发一封邮件到 {mlist.address.replace('@', '+unsubscribe@', 1)}，或使用邮件中的退订链接。\n\n"
                f"You are now a member of {mlist.address}. Mail to it goes to every member.\n"
                f"To leave, write to {mlist.address.replace('@', '+unsubscribe@', 1)} or use the unsubscribe link.\n")
        subject = f"欢迎加入 {mlist.address} / Welcome to {mlist.address}"
    else:
        body = (f"您已退出邮件列表 {mlist.address}。\n\nYou have left the mailing list {mlist.address}.\n")
        subject = f"已退出 {mlist.address} / You left {mlist.address}"
    return _message(mlist, sender, address, subject, body, hostname).as_bytes()


def moderation_request(mlist: MailingList, to: str, sender: str, hostname: str, entry_id: int, poster: str,
                       subject: str, from_: str, size: int, approve: str, reject: str, held: bytes) -> bytes:
    """To a moderator: the held post attached; replying approves it, writing to ``reject`` rejects it."""
    body = (f"邮件列表 {mlist.address} 有一封待审核的邮件（编号 {entry_id}）：\n"
            f"  发件人：{line(from_)} <{line(poster)}>\n  主题：{line(subject)}\n  大小：{size} 字节\n\n"
            f"批准：直接回复本邮件（发到 {approve}）。\n拒绝：发一封邮件到 {reject}。\n"
            f"也可在管理页面或命令行 dizimail list moderate {mlist.address} 中处理。\n\n"
            f"A post to the mailing list {mlist.address} waits for a moderator (entry {entry_id}):\n"
            f"  From: {line(from_)} <{line(poster)}>\n  Subject: {line(subject)}\n  Size: {size} octets\n\n"
            f"To approve it, reply to this message (it goes to {approve}).\n"
            f"To reject it, write to {reject}.\n"
            f"Or use the admin pages, or: dizimail list moderate {mlist.address}\n")
    msg = _message(mlist, sender, to, f"[待审核 To moderate] {mlist.address}: {line(subject, 150)}", body,
                   hostname, reply_to=approve)
    if len(held) <= ATTACH_LIMIT:
        msg.add_attachment(held, maintype="message", subtype="rfc822")
    else:
        head = held.split(b"\r\n\r\n", 1)[0][:ATTACH_LIMIT] + b"\r\n"
        msg.add_attachment(head, maintype="text", subtype="rfc822-headers")
    return msg.as_bytes()


def rejected(mlist: MailingList, to: str, sender: str, hostname: str, subject: str, reason: str) -> bytes:
    why = f"\n  原因 / Reason: {line(reason, 500)}\n" if reason else ""
    body = (f"您发到邮件列表 {mlist.address} 的邮件“{line(subject)}”未获版主批准，没有发给成员。{why}\n"
            f"Your post “{line(subject)}” to the mailing list {mlist.address} was not approved by a moderator "
            f"and did not go to the members.\n")
    return _message(mlist, sender, to, f"未获批准 / Not approved: {line(subject, 150)}", body, hostname).as_bytes()
