"""SieveStore: users' Sieve scripts, several per account, one of them active (issue #12, RFC 5804)."""

from __future__ import annotations

from typing import Protocol

from dizimail.model.sieve import ActiveScript, ScriptInfo


class SieveStore(Protocol):
    async def list_scripts(self, account_id: int) -> list[ScriptInfo]:
        """By name."""

    async def get_script(self, account_id: int, name: str) -> str | None: ...

    async def put_script(self, account_id: int, name: str, content: str) -> None:
        """Create or replace (an active script stays active)."""

    async def activate(self, account_id: int, name: str | None) -> bool:
        """Make ``name`` the active script (None: none); False when there is no such script."""

    async def delete_script(self, account_id: int, name: str) -> bool: ...

    async def rename_script(self, account_id: int, old: str, new: str) -> bool:
        """False when ``old`` does not exist; the caller checks that ``new`` does not."""

    async def active_scripts(self, account_ids: list[int]) -> dict[int, ActiveScript]:
        """The active script of each account that has one: what local delivery runs."""

    async def script_text(self, script_id: int) -> str | None: ...

    async def reply_due(self, account_id: int, key: str, until: float, now: float) -> bool:
        """Whether a vacation reply keyed ``key`` may go now (RFC 5230 §4.2): True, and the next one waits
        until ``until``, when none went since the last period ended; False otherwise. Atomic: two
        deliveries at once send one reply."""
