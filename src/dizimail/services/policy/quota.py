"""The one quota rule (RFC 9208 STORAGE): a message fits when the account's usage after it stays
within its quota. RCPT (with the size the client declared), the commit at DATA (with the real size,
atomically, in storage), APPEND, COPY and the queue's retries all use it."""

from __future__ import annotations

from dizimail.model.types import Account, QueuedRecipient, RcptStatus


class QuotaRule:
    """``grace``: bytes an account may exceed its quota by (0: none), so that the message that
    crosses the line still arrives, as some sites want."""

    def __init__(self, grace: int = 0) -> None:
        self.grace = grace

    def limit(self, account: Account) -> int | None:
        """The most bytes the account may use after a delivery; None: unlimited."""
        return account.quota_bytes + self.grace if account.quota_bytes else None

    def fits(self, account: Account, size: int) -> bool:
        limit = self.limit(account)
        return limit is None or account.used_bytes + size <= limit

    def deferred(self, address: str) -> QueuedRecipient:
        """The queue row for a recipient whose mailbox was too full at delivery: retried later."""
        return QueuedRecipient(address, status=RcptStatus.DEFERRED, last_error="452 4.2.2 mailbox full")
