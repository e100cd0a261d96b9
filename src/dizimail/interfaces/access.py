"""AccessListStore: the operator's block and allow lists (``dizimail block|allow``). Changes take
effect without a restart: readers ask for :meth:`access_version` (a cheap read) and reload the
entries only when it moved."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from dizimail.model.access import AccessEntry, ListName


class AccessListStore(Protocol):
    async def list_access(self) -> list[AccessEntry]:
        """Every entry of both lists, ordered by list, scope and pattern."""

    async def access_version(self) -> tuple[int, int]:
        """Changes whenever an entry is added or removed (by any process)."""

    async def add_access(self, entries: Sequence[AccessEntry]) -> int:
        """Add the entries in one transaction; returns how many were new (a listed one is left as it is)."""

    async def remove_access(self, name: ListName, scope: str, pattern: str) -> None:
        """Raises NotFound if the entry is not listed."""
