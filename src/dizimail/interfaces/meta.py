"""MetaStore: domains, accounts, aliases, mailboxes and the message index.

The message index is laid out for IMAP (RFC 3501 §2.3.1, RFC 7162): each
mailbox has UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ; each message a UID, a
MODSEQ, flags, an internal date and a size.
"""

from __future__ import annotations

from typing import Protocol

from dizimail.model.types import (
    Account,
    AddressInfo,
    Alias,
    CommitResult,
    Domain,
    IngestRecord,
    MailboxInfo,
    MessageEntry,
)

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
        for the rest, the blob's reference count and the accounts' usage. Raises
        TemporaryFailure if the blob is gone. Returns only after the commit is durable."""

    async def get_mailbox(self, account_id: int, name: str) -> MailboxInfo | None: ...

    async def list_messages(self, mailbox_id: int) -> list[MessageEntry]:
        """Index rows in UID order."""

    async def expunge(self, mailbox_id: int, uids: list[int]) -> int:
        """Remove messages; release their blobs and quota. Returns the number removed."""
