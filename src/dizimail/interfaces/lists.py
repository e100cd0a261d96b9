"""ListStore: mailing lists, their members and the confirmations waiting (issue #12, docs/lists.md).

A post itself is not stored here: it is a message like any other (one blob, a row per local member, a
queue row per remote one); a post waiting for a moderator is a quarantine entry of kind ``list``."""

from __future__ import annotations

from typing import Protocol

from dizimail.model.lists import ListChange, MailingList, Member, Pending


class ListStore(Protocol):
    async def get_list(self, address: str) -> MailingList | None:
        """By its address (lower-case, U-labels)."""

    async def list_lists(self, domain: str | None = None) -> list[MailingList]:
        """By address, with ``members`` counted (active ones)."""

    async def create_list(self, mlist: MailingList) -> MailingList:
        """Raises Conflict when the address is taken by a list; the caller checks accounts and aliases.
        The list's domain must be a local domain (NotFound otherwise)."""

    async def update_list(self, address: str, change: ListChange) -> bool: ...

    async def delete_list(self, address: str) -> bool:
        """The list, its members and its confirmations waiting."""

    async def members(self, list_id: int, *, active_only: bool = False) -> list[Member]:
        """By address."""

    async def add_members(self, list_id: int, addresses: list[str], now: float) -> int:
        """Adds the addresses not there yet (a disabled one becomes active again, its bounces forgotten);
        how many were added or enabled."""

    async def remove_members(self, list_id: int, addresses: list[str]) -> int: ...

    async def is_member(self, list_id: int, address: str) -> bool:
        """An active member by that address, or (``@domain``) by its domain."""

    async def get_member(self, member_id: int) -> tuple[int, Member] | None:
        """(list id, member)."""

    async def record_bounce(self, member_id: int, now: float, forget_after: float, limit: int) -> Member | None:
        """Count a hard bounce (a run of them restarts after ``forget_after`` seconds without one); the
        member becomes ``disabled`` at ``limit``. Atomic. None when there is no such member."""

    async def put_pending(self, token: str, pending: Pending) -> bool:
        """Keep a confirmation waiting under ``token`` (a hash of the secret sent), unless one for the same
        list, action and address is still waiting (False: nothing is sent again)."""

    async def take_pending(self, token: str, now: float) -> Pending | None:
        """The confirmation waiting under ``token``, removed; None when unknown or expired."""

    async def has_pending(self, token: str, now: float) -> bool: ...
