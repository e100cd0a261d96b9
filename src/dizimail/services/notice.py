"""Broadcast notices (消息通知发布, issue #11): a text from the administration to every user of the system
or of one domain, delivered as mail through ingest (services.submit: the policy and the store every
message goes through).

The mail comes from the postmaster with ``Auto-Submitted: auto-generated`` and ``Precedence: bulk``
(vacation replies and forwarding rules leave it alone). Recipients go in batches of the policy's
``limits.max_recipients``: each batch is one stored message and a row per mailbox."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from dizimail.model.errors import InvalidInput
from dizimail.services.accounts import AccountService
from dizimail.services.submit import Submitter

log = logging.getLogger("dizimail.notice")
MAX_SUBJECT = 200
MAX_BODY = 100_000
SENDER_NAME = "系统通知 System notice"


class Notices:
    def __init__(self, accounts: AccountService, submitter: Submitter, hostname: str, batch: int,
                 longest_hold: float = 7 * 86400.0) -> None:
        self.accounts = accounts
        self.submitter = submitter
        self.hostname = hostname
        self.batch = max(1, batch)
        self.longest_hold = longest_hold  # smtp.future_release_max

    async def send(self, subject: str, body: str, domain: str | None, release_at: float | None = None) -> int:
        """Deliver the notice to every active user (of ``domain``, or of every domain); how many it goes to.
        ``release_at``: sent then (定时群发), waiting in the queue until (cancel with ``queue delete``)."""
        if release_at is not None:
            wait = release_at - time.time()
            if wait > self.longest_hold:
                raise InvalidInput("future_release_too_far", f"{wait:.0f} s > {self.longest_hold:.0f} s")
            if wait <= 0:
                release_at = None
        subject, body = subject.strip(), body.replace("\r\n", "\n").strip()
        if not subject or len(subject) > MAX_SUBJECT or "\n" in subject or "\r" in subject:
            raise InvalidInput("bad_subject")
        if not body or len(body) > MAX_BODY:
            raise InvalidInput("bad_body")
        users = [u.address for u in await self.accounts.list_users(domain) if u.active]
        if not users:
            return 0
        sender = await self.accounts.postmaster(self.hostname)
        message = EmailMessage(policy=SMTP)
        local, _, host = sender.rpartition("@")
        message["From"] = Address(SENDER_NAME, local, host)
        message["To"] = "undisclosed-recipients:;"
        message["Subject"] = subject
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = make_msgid(domain=self.hostname)
        message["Auto-Submitted"] = "auto-generated"
        message["Precedence"] = "bulk"
        message.set_content(body + "\n", charset="utf-8", cte="base64" if not body.isascii() else "7bit")
        data = message.as_bytes()
        delivered = 0
        for start in range(0, len(users), self.batch):
            batch = users[start:start + self.batch]
            result = await self.submitter.submit(sender, batch, data, protocol="notice", release_at=release_at)
            delivered += len(result.delivered) if release_at is None else len(batch)
        log.info("notice.sent domain=%s recipients=%d delivered=%d", domain or "*", len(users), delivered)
        return delivered
