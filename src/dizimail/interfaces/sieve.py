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

    async def remember(self, account_id: int, key: str, until: float, now: float, refresh: bool) -> bool:
        """Whether ``key`` was remembered for the account and not expired at ``now``; it is remembered
        until ``until`` from now on if it was not (or always, with ``refresh``). Atomic: of two deliveries
        at once, one finds the other's (one vacation reply, one duplicate)."""

    async def get_rules(self, account_id: int) -> str | None:
        """The account's settings (JSON, services.sieve.rules), None when it has none."""

    async def put_rules(self, account_id: int, rules: str | None) -> None:
        """Store the settings; None removes them."""

    async def rules_for(self, account_ids: list[int]) -> dict[int, str]:
        """The settings of each account that has some: what local delivery runs before the user's script."""

    async def delivery_state(self, account_ids: list[int]) -> tuple[dict[int, ActiveScript], dict[int, str]]:
        """``active_scripts`` and ``rules_for`` at once (one look-up per delivered message)."""
