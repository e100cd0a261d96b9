"""Value types of the outbound path: queue items, per-recipient outcomes, routes, fetch accounts."""

from __future__ import annotations

from dataclasses import dataclass, field

from dizimail.model.types import PENDING, RcptStatus


@dataclass(slots=True)
class QueueRecipientRow:
    id: int
    address: str
    notify: str | None
    orcpt: str | None
    status: RcptStatus
    attempts: int
    next_attempt: float
    last_error: str
    sender: str | None = None  # its own envelope sender (a list's VERP return path)
    prefix: bytes = b""  # header lines of its own, before the message's


@dataclass(slots=True)
class QueueItem:
    """One queued message with its recipients, as leased by a runner or shown to an operator."""

    queue_id: str
    blob_id: str
    sender: str
    size: int
    created: float
    params: dict[str, str]
    prefix: bytes
    held: bool
    warned: bool
    lease_owner: str | None
    lease_expiry: float
    recipients: list[QueueRecipientRow] = field(default_factory=list)

    @property
    def pending(self) -> list[QueueRecipientRow]:
        return [r for r in self.recipients if r.status in PENDING]


@dataclass(frozen=True, slots=True)
class RecipientOutcome:
    """What one delivery attempt did for one recipient (CONVENTIONS habit 5)."""

    rcpt_id: int
    status: RcptStatus  # delivered | deferred | failed
    detail: str  # the remote reply or our reason, e.g. "550 5.1.1 <x@y>: user unknown"
    next_attempt: float = 0.0


@dataclass(frozen=True, slots=True)
class Route:
    """``domain`` (or "*") → an SMTP next hop, or "hold" in a holding account for the inner server to fetch."""

    domain: str
    kind: str  # smtp | hold
    host: str  # smtp: host name or IP; hold: the holding account's address
    port: int
    created: float = 0.0


@dataclass(frozen=True, slots=True)
class DkimKey:
    domain: str
    selector: str
    private_key: bytes  # PEM
    public_key: str  # base64 DER, as published in the p= tag


@dataclass(slots=True)
class FetchAccount:
    """A remote POP3/IMAP mailbox fetched on a timer.

    ``mode`` "envelope": the gateway's holding mailbox in poll mode; each message carries its envelope
    recipient in a Delivered-To line that the gateway wrote, and is routed like SMTP mail. ``mode``
    "account": a user's external mailbox, delivered into ``account``'s INBOX.
    """

    id: int
    account: str | None
    mode: str
    protocol: str  # pop3 | imap
    host: str
    port: int
    security: str  # none | starttls | tls
    verify: bool
    username: str
    password: str
    interval: float
    keep: bool
    last_run: float = 0.0
    last_error: str = ""
    outside_only: bool = False  # a user's own: its host is checked to be on the internet at every connection
