"""MetaStore: domains, accounts, aliases, mailboxes and the message index.

The message index is laid out for IMAP (RFC 3501 §2.3.1, RFC 7162): each
mailbox has UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ; each message a UID, a
MODSEQ, flags, an internal date and a size.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Protocol

from dizimail.model.types import (
    Account,
    AddressInfo,
    Alias,
    BlobMeta,
    CommitResult,
    Domain,
    FlagChange,
    IngestRecord,
    MailboxChanges,
    MailboxInfo,
    MailboxSnapshot,
    MailboxStatus,
    MessageEntry,
    MessageFilter,
    MessageKeys,
    SortKeys,
)

SORT_ORDERS = ("arrival", "date", "size", "subject", "from", "to", "cc", "displayfrom", "displayto")

DEFAULT_MAILBOXES = (("INBOX", None), ("Drafts", "\\Drafts"), ("Sent", "\\Sent"), ("Trash", "\\Trash"),
                     ("Junk", "\\Junk"), ("Archive", "\\Archive"))


class MetaStore(Protocol):
    # --- domains -------------------------------------------------------
    async def add_domain(self, name: str, alias_of: str | None = None) -> Domain:
        """Create a domain (or a domain alias onto ``alias_of``). Conflict if it exists."""

    async def get_domain(self, name: str) -> Domain | None: ...

    async def list_domains(self) -> list[Domain]: ...

    async def remove_domain(self, name: str) -> None:
        """Remove a domain that has no accounts or aliases left (Conflict otherwise)."""

    async def set_domain_status(self, name: str, status: str) -> None: ...

    # --- accounts ------------------------------------------------------
    async def add_accounts(self, rows: list[tuple[str, str, str, int]]) -> list[str | None]:
        """Create accounts ``(address, password_hash, name, quota_bytes)`` with their
        default mailboxes, in one transaction per call; returns per row None or an error key."""

    async def get_account(self, address: str) -> Account | None: ...

    async def list_accounts(self, domain: str | None = None) -> list[Account]: ...

    async def page_accounts(self, domain: str, *, after: str = "", search: str = "", limit: int = 100) -> list[Account]:
        """One page of a domain's accounts in local-part order: those after the local part ``after``;
        with ``search``, only those whose local part or name contains it (case-insensitive for ASCII)."""

    async def update_account(self, address: str, *, password_hash: str | None = None,
                             status: str | None = None, quota_bytes: int | None = None,
                             name: str | None = None) -> None: ...

    async def remove_account(self, address: str) -> None:
        """Delete the account, its mailboxes and index rows (blobs are released)."""

    # --- aliases -------------------------------------------------------
    async def add_alias(self, address: str, targets: list[str]) -> None: ...

    async def get_alias(self, address: str) -> Alias | None: ...

    async def list_aliases(self, domain: str | None = None) -> list[Alias]: ...

    async def remove_alias(self, address: str) -> None: ...

    async def lookup(self, address: str) -> AddressInfo:
        """One round trip for routing: the address's domain, and the account or alias it names
        (the latter two only when the domain is local and not a domain alias)."""

    # --- the mail path -------------------------------------------------
    async def commit_ingest(self, record: IngestRecord) -> CommitResult:
        """Atomically store an accepted message: index rows for local deliveries, queue rows
        for the rest, the blob's reference count and the accounts' usage. A delivery with a
        ``limit`` is stored only if its account's usage stays within it (checked in the same
        transaction); otherwise its address is listed in ``CommitResult.refused`` and its ``fallback``
        recipient is queued, provided something else of the message is stored or queued: when every
        delivery is refused and nothing else is queued, nothing at all is written.
        Raises TemporaryFailure if the blob is gone. Returns only after the commit is durable."""

    # --- mailboxes (RFC 3501 §6.3) --------------------------------------
    async def list_mailboxes(self, account_id: int) -> list[MailboxInfo]:
        """Every mailbox of the account, by name."""

    async def get_mailbox(self, account_id: int, name: str) -> MailboxInfo | None: ...

    async def create_mailbox(self, account_id: int, name: str, special_use: str | None = None) -> MailboxInfo:
        """Create with a UIDVALIDITY never used before for the account; Conflict if it exists."""

    async def delete_mailbox(self, account_id: int, name: str) -> None:
        """Delete a mailbox and its messages (blobs released); NotFound if absent."""

    async def rename_mailbox(self, account_id: int, old: str, new: str, delimiter: str = "/") -> None:
        """Rename a mailbox and its children (RFC 3501 §6.3.5)."""

    async def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None:
        """Subscribe or unsubscribe a name (RFC 3501 §6.3.6: the mailbox need not exist)."""

    async def list_subscriptions(self, account_id: int) -> list[str]: ...

    async def mailbox_status(self, mailbox_id: int) -> MailboxStatus:
        """Counts for STATUS and SELECT (RFC 3501 §6.3.10, RFC 7162, RFC 8438), kept as messages change:
        no message is counted per call."""

    async def find_status(self, account_id: int, name: str) -> tuple[MailboxInfo, MailboxStatus] | None:
        """The mailbox of that name and its counters (as :meth:`mailbox_status`), or None."""

    async def take_recent(self, mailbox_id: int) -> tuple[int, int]:
        """Claim the \\Recent messages (RFC 3501 §2.3.2): UIDs ``first <= uid < end`` are \\Recent for
        the caller, including any not yet seen by it; later sessions see them as old."""

    async def snapshot_mailbox(self, mailbox_id: int) -> MailboxSnapshot:
        """The UIDs and counters of a mailbox (its STATUS counters too), first unseen and keywords, in
        one read transaction: what SELECT reports (RFC 3501 §6.3.1), without reading any message's row."""

    async def message_rows(self, mailbox_id: int, uids: Sequence[int]) -> list[MessageEntry]:
        """Index rows of the given UIDs (ascending), in UID order; absent UIDs are skipped.

        A message expunged less than ``storage.blob_grace`` ago is still returned, as it was when
        it was expunged: a session that has not yet announced the expunge may fetch it
        (RFC 2180 §4.1.1). Callers ask for at most a few thousand UIDs at a time."""

    async def deleted_uids(self, mailbox_id: int) -> list[int]:
        """UIDs of the messages flagged \\Deleted, ascending (RFC 3501 §6.4.3 EXPUNGE, §6.4.2 CLOSE)."""

    async def list_messages(self, mailbox_id: int) -> list[MessageEntry]:
        """Index rows in UID order (every row: for POP3's maildrop, not for IMAP's view)."""

    async def mailbox_changes(self, mailbox_id: int, since_modseq: int, known_uidnext: int) -> MailboxChanges:
        """New messages (UID >= known_uidnext), flag changes and expunges since a MODSEQ (RFC 7162),
        with the mailbox's STATUS counters read in the same snapshot."""

    async def store_flags(self, mailbox_id: int, uids: list[int], mode: str, flags: tuple[str, ...],
                          unchangedsince: int | None = None) -> tuple[list[FlagChange], list[int]]:
        """Change flags ("+", "-" or "" = replace); returns changes and UNCHANGEDSINCE failures."""

    async def copy_messages(self, source_id: int, uids: list[int], target_id: int, move: bool = False,
                            limit: int | None = None) -> list[tuple[int, int]]:
        """Copy or move (RFC 6851) sharing blobs; returns (source UID, target UID) pairs. The target
        account is charged (not for a move within one account); with ``limit``, raises
        PreconditionFailed and writes nothing if its usage would pass it."""

    async def sweep_blobs(self, grace: float, limit: int = 1000) -> int:
        """Remove blobs that have had no reference for ``grace`` seconds; returns how many."""

    async def blob_meta(self, blob_id: str) -> BlobMeta | None:
        """Cached ENVELOPE / BODYSTRUCTURE / BODY of a blob, if computed (without search text or keys)."""

    async def set_blob_meta(self, blob_id: str, meta: BlobMeta) -> None:
        """Store a blob's description; its sort keys too when ``meta.sort`` is given."""

    # --- SEARCH, SORT and THREAD (RFC 9051 §6.4.4, RFC 5256): large mailboxes are read off the event loop
    async def filter_uids(self, mailbox_id: int, f: MessageFilter) -> set[int]:
        """UIDs of the mailbox's messages whose stored fields satisfy every bound of ``f`` (flags,
        size, internal date, MODSEQ, and the sent day of the blob's sort keys)."""

    async def sorted_uids(self, mailbox_id: int, order: Sequence[tuple[str, bool]]) -> array[int]:
        """Every UID of the mailbox ordered by ``(key, descending)`` pairs, ties in ascending UID.

        Keys are SORT_ORDERS: the internal date, the sent date (the internal date for a message
        whose Date field did not parse, RFC 5256 §3), the size, and the blob's stored string keys
        (compared by code point: they are case-mapped when computed). Blobs without keys
        (:meth:`blobs_without_keys`) must be given theirs first."""

    async def message_keys(self, mailbox_id: int) -> list[MessageKeys]:
        """Every message of the mailbox with its blob's sort keys (None if not computed), by UID."""

    async def blobs_without_keys(self, mailbox_id: int) -> list[str]:
        """Blob ids of the mailbox's messages that still need sort keys: their blob has none yet (stored
        before keys existed, or too large to describe at ingest), or the message was stored without
        them; :meth:`set_sort_keys` completes both."""

    async def set_sort_keys(self, items: Sequence[tuple[str, SortKeys]]) -> None:
        """Store computed sort keys for blobs (blob id, keys), in one transaction."""

    async def expunge(self, mailbox_id: int, uids: list[int]) -> int:
        """Remove messages; release their blobs and quota. Returns the number removed."""
