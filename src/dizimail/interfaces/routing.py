"""RoutingStore: the operator's tables for the two networks (DESIGN.md §1, the seed's mail routing table).

Routes (``domain → host:port`` or "hold"), networks allowed to relay through a
gateway, DKIM keys, run-time settings (e.g. delivery concurrency) and fetch
accounts with the UIDs already fetched. Changes take effect without a restart:
readers ask the store (cheap point reads) rather than caching for long.
"""

from __future__ import annotations

from typing import Protocol

from dizimail.model.outbound import DkimKey, FetchAccount, Route


class RoutingStore(Protocol):
    async def list_routes(self) -> list[Route]: ...

    async def get_route(self, domain: str) -> Route | None:
        """The route for exactly ``domain`` (lower-case), or None."""

    async def set_route(self, route: Route) -> None:
        """Add or replace the route for ``route.domain``."""

    async def remove_route(self, domain: str) -> None:
        """Raises NotFound if there is none."""

    async def list_relay_networks(self) -> list[str]: ...

    async def add_relay_network(self, network: str) -> None: ...

    async def remove_relay_network(self, network: str) -> None:
        """Raises NotFound if it is not listed."""

    async def get_dkim_key(self, domain: str) -> DkimKey | None: ...

    async def set_dkim_key(self, key: DkimKey) -> None: ...

    async def get_setting(self, key: str) -> str | None: ...

    async def set_setting(self, key: str, value: str) -> None: ...

    async def list_fetch_accounts(self) -> list[FetchAccount]: ...

    async def add_fetch_account(self, account: FetchAccount) -> int:
        """Stores it and returns its id; Conflict if the same remote mailbox is already fetched for that owner."""

    async def remove_fetch_account(self, fetch_id: int) -> None: ...

    async def set_fetch_password(self, fetch_id: int, password: str) -> None:
        """Replace the stored password (as the service sealed it) of one fetch account."""

    async def fetch_seen(self, fetch_id: int) -> set[str]:
        """UIDs (POP3 UIDL or IMAP UIDVALIDITY.UID) already committed here."""

    async def forget_fetched(self, fetch_id: int, uids: set[str]) -> None:
        """Drop seen UIDs that the remote side no longer has (they were deleted there)."""

    async def fetch_ran(self, fetch_id: int, when: float, error: str) -> None: ...
