"""FetchStore: accounts the fetcher polls (the gateway's holding box, users' external POP3/IMAP mailboxes)
and the remote UIDs already committed here, so that nothing fetched is ever fetched twice."""

from __future__ import annotations

from typing import Protocol

from dizimail.model.outbound import FetchAccount


class FetchStore(Protocol):
    async def list_fetch_accounts(self) -> list[FetchAccount]: ...

    async def add_fetch_account(self, account: FetchAccount) -> int:
        """Stores it and returns its id; Conflict if the same remote mailbox is already fetched for that owner."""

    async def remove_fetch_account(self, fetch_id: int) -> None: ...

    async def set_fetch_password(self, fetch_id: int, password: str) -> None:
        """Replace the stored password (as the service sealed it) of one fetch account."""

    async def fetch_seen(self, fetch_id: int) -> set[str]:
        """UIDs (POP3 UIDL or IMAP UIDVALIDITY.UID) already committed here (MetaStore.commit_ingest records
        them in the same transaction as the message)."""

    async def forget_fetched(self, fetch_id: int, uids: set[str]) -> None:
        """Drop seen UIDs that the remote side no longer has (they were deleted there)."""

    async def fetch_ran(self, fetch_id: int, when: float, error: str) -> None: ...
