"""TrafficStore: mail counted per day, domain and flow (issue #11), added to by every node."""

from __future__ import annotations

from typing import Protocol

from dizimail.model.traffic import TrafficRow


class TrafficStore(Protocol):
    async def add_traffic(self, rows: list[TrafficRow]) -> None:
        """Add these counts to what is stored (several nodes add to the same rows)."""

    async def traffic(self, first_day: str, last_day: str) -> list[TrafficRow]:
        """Every row from ``first_day`` to ``last_day`` (inclusive, YYYY-MM-DD)."""
