"""Plain value types passed between services and stores."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from enum import StrEnum


class RcptStatus(StrEnum):
    """A queued recipient's state (docs/queue.md): queued → delivered | deferred → … | failed."""

    QUEUED = "queued"
    DEFERRED = "deferred"
    DELIVERED = "delivered"
    FAILED = "failed"


PENDING = (RcptStatus.QUEUED, RcptStatus.DEFERRED)


class Status(StrEnum):
    """Of a domain or an account: mail flows, or everything is refused (mail with 550 5.2.1, logins)."""

    ACTIVE = "active"
    SUSPENDED = "suspended"


ACTIVE = Status.ACTIVE
SUSPENDED = Status.SUSPENDED


@dataclass(frozen=True)
class Domain:
    id: int
    name: str
    status: Status
    alias_of: str | None = None


@dataclass(frozen=True)
class Account:
    id: int
    address: str
    name: str
    password_hash: str
    quota_bytes: int  # 0 = unlimited
    used_bytes: int
    status: Status
    domain_status: Status = ACTIVE
    message_count: int = 0

    @property
    def active(self) -> bool:
        return self.status == ACTIVE and self.domain_status == ACTIVE


@dataclass(frozen=True)
class Alias:
    address: str
    targets: tuple[str, ...]


@dataclass(frozen=True)
class AddressInfo:
    """What one address is locally: its domain (if local), and the account or alias it names."""

    domain: Domain | None
    account: Account | None = None
    alias: Alias | None = None


@dataclass(frozen=True)
class BlobRef:
    """A content-addressed message body: ``id`` is the SHA-256 hex digest."""

    id: str
    size: int
    directory: str = ""  # filesystem-backed stores: the directory to fsync before commit


@dataclass(frozen=True)
class LocalDelivery:
    """One copy of a message into one account's mailbox.

    ``prefix`` carries per-recipient trace headers (Delivered-To ...) so the
    blob itself stays shared between recipients (DESIGN.md §3).
    """

    account_id: int
    address: str
    mailbox: str
    prefix: bytes
    flags: tuple[str, ...] = ()
    internal_date: float | None = None  # APPEND may set it; else the time of receipt
    # Stored only if the account's used bytes stay within ``limit`` after it (None: no limit), checked
    # atomically with the insert; otherwise ``fallback`` is queued instead, in the same transaction.
    # The caller (the policy's quota rule) decides both: storage only honours them.
    limit: int | None = None
    fallback: QueuedRecipient | None = None


@dataclass(frozen=True)
class QueuedRecipient:
    address: str
    notify: str | None = None
    orcpt: str | None = None
    status: RcptStatus = RcptStatus.QUEUED
    last_error: str = ""
    attempts: int = 0
    next_attempt: float = 0.0
    sender: str | None = None  # its own envelope sender (a list's VERP return path), else the message's
    prefix: bytes = b""  # header lines of its own, before the message's prefix


SEARCH_FIELDS = ("subject", "from", "to", "cc", "bcc", "headers", "body")


@dataclass(frozen=True)
class SearchDoc:
    """Case-folded, charset-decoded text of a message for the search index (one per blob)."""

    subject: str
    addr_from: str
    addr_to: str
    addr_cc: str
    addr_bcc: str
    headers: str
    body: str


@dataclass(frozen=True, slots=True)
class SortKeys:
    """What SORT and THREAD compare (RFC 5256 §2, §3; RFC 5957), computed once per blob.

    Strings are case-mapped (i;ascii-casemap), so they compare by code point. ``sent`` is the Date
    field as a UTC timestamp and ``sent_day`` the day it names in its own zone (``date.toordinal``),
    both None when it does not parse; SORT DATE then uses the internal date of each copy."""

    subject: str  # the base subject (RFC 5256 §2.1)
    reply: bool  # the subject marked a reply or forward
    sent: float | None
    sent_day: int | None
    sort_from: str  # addr-mailbox of the first From address
    sort_to: str
    sort_cc: str
    display_from: str  # RFC 5957: the display name, else the address
    display_to: str
    message_id: str  # the first msg-id of Message-ID, "" if none
    references: tuple[str, ...]  # References, else In-Reply-To's first id (RFC 5256 §2.2)


@dataclass(frozen=True, slots=True)
class MessageKeys:
    """One message of a mailbox with its sort keys (``keys`` None: not computed for its blob yet)."""

    uid: int
    internal_date: float
    size: int
    keys: SortKeys | None


@dataclass(frozen=True)
class MessageFilter:
    """A condition on the stored fields of a mailbox's messages; every bound given must hold.

    Times are epoch seconds, days ``date.toordinal`` values; a message whose Date field did not
    parse has no sent day and matches no sent-day bound."""

    flag: str | None = None  # has this flag (compared case-insensitively) ...
    flag_set: bool = True  # ... or, when False, has it not
    larger: int | None = None  # size strictly above
    smaller: int | None = None  # size strictly below
    internal_from: float | None = None  # internal date at or after
    internal_until: float | None = None  # internal date before
    sent_from_day: int | None = None  # Date field's day at or after
    sent_until_day: int | None = None  # Date field's day before
    modseq_from: int | None = None  # MODSEQ at least


@dataclass(frozen=True)
class BlobMeta:
    """IMAP renderings computed once per blob at ingest (shared by every copy of the message)."""

    envelope: bytes
    bodystructure: bytes
    body: bytes
    search: SearchDoc | None = None
    sort: SortKeys | None = None


@dataclass(frozen=True)
class IngestRecord:
    """Everything one accepted message changes, committed atomically."""

    queue_id: str
    blob: BlobRef
    sender: str
    received_at: float
    deliveries: tuple[LocalDelivery, ...] = ()
    queued: tuple[QueuedRecipient, ...] = ()
    queue_prefix: bytes = b""
    params: dict[str, str] = field(default_factory=dict)
    meta: BlobMeta | None = None
    fetched: tuple[int, str] | None = None  # (fetch account id, remote UID): recorded in the same transaction
    quarantine: Quarantined | None = None  # held for a human instead of delivered (no deliveries, nothing queued)
    released: int | None = None  # the quarantine entry these deliveries release (removed in the same transaction)


@dataclass(frozen=True)
class Quarantined:
    """A message held for a human instead of delivered (a virus, a spam score past the line): its
    envelope, why, and what each check found (``findings``: (check, result, points, reason) each), kept
    until it is released, deleted or ``expires``. ``prefix``: the trace lines delivery would have put
    before it (Authentication-Results, X-Spam-*), put there on release; ``signature``: the DKIM-Signature
    field its remote recipients' copy would have carried (submitted mail), empty otherwise."""

    queue_id: str
    blob_id: str
    size: int
    sender: str
    recipients: tuple[str, ...]  # as the client gave them (a release resolves them again)
    kind: str  # "virus" | "spam"
    reason: str
    score: float
    findings: tuple[tuple[str, str, float, str], ...]
    prefix: bytes
    subject: str
    from_: str
    created: float
    expires: float
    id: int = 0  # given by the store
    signature: bytes = b""


@dataclass(frozen=True)
class CommitResult:
    delivered: tuple[int, ...]  # account ids
    refused: tuple[str, ...]  # addresses whose delivery its limit refused (queued if it had a fallback)
    mailboxes: tuple[int, ...] = ()  # mailbox ids that changed (for change notifications)
    uids: tuple[int, ...] = ()  # the UID each delivery got, in order (APPENDUID)
    quarantined: int = 0  # the quarantine entry the message went to instead (0: it did not)


@dataclass(frozen=True)
class MailboxInfo:
    id: int
    account_id: int
    name: str
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    special_use: str | None = None
    subscribed: bool = True


@dataclass(frozen=True)
class MailboxStatus:
    """RFC 3501 §6.3.10 STATUS items (+ RFC 7162 HIGHESTMODSEQ, RFC 8438 SIZE)."""

    messages: int
    unseen: int
    recent: int
    deleted: int
    size: int
    uidnext: int
    uidvalidity: int
    highestmodseq: int
    recent_from: int = 1  # UIDs from here on are \\Recent for the next session that selects


@dataclass(frozen=True)
class MailboxSnapshot:
    """What SELECT reports, read at one instant without any message's row (RFC 3501 §6.3.1,
    RFC 7162 §3.1.2.1): the UIDs in order (4 bytes each) and the counters."""

    uids: array[int]  # ascending; message sequence number n is uids[n - 1]
    uidnext: int
    highestmodseq: int
    recent_from: int  # UIDs from here on are \\Recent for the next session that claims them
    first_unseen: int | None  # the lowest UID without \\Seen
    keywords: tuple[str, ...]  # the keywords set on some message (FLAGS, PERMANENTFLAGS)
    status: MailboxStatus | None = None  # the STATUS counters at that instant (RECENT left 0)


@dataclass(frozen=True)
class FlagChange:
    uid: int
    flags: tuple[str, ...]
    modseq: int


@dataclass(frozen=True)
class MailboxChanges:
    """What happened in a mailbox since a session last looked (RFC 3501 §7.4.1, RFC 7162)."""

    new: tuple[MessageEntry, ...]
    changed: tuple[FlagChange, ...]
    expunged: tuple[int, ...]  # UIDs
    highestmodseq: int
    uidnext: int
    status: MailboxStatus | None = None  # the STATUS counters as the changes were read (RECENT left 0)


@dataclass(slots=True)  # not frozen: built by the thousand at SELECT, where frozen __init__ costs
class MessageEntry:
    """An index row: one message in one mailbox (IMAP-ready: UID, MODSEQ, flags)."""

    id: int
    mailbox_id: int
    uid: int
    modseq: int
    flags: tuple[str, ...]
    internal_date: float
    size: int  # prefix + blob
    blob_id: str
    prefix: bytes


@dataclass(frozen=True)
class QueueEntry:
    queue_id: str
    sender: str
    created: float
    size: int
    recipients: tuple[QueuedRecipient, ...]
    held: bool = False
