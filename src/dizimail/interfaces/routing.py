"""RoutingStore: the operator's tables for the two networks (DESIGN.md §1, the seed's mail routing table).

Routes (``domain → host:port`` or "hold") and the networks allowed to relay through a gateway.
Changes take effect without a restart: readers ask the store (cheap point reads, cached for at most
half a second) rather than caching for long.
"""

from __future__ import annotations

from typing import Protocol

from dizimail.model.outbound import Route


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
