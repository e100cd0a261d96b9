"""ContactStore: users' address books and webmail preferences (issue #13). Every call names the account:
a user reaches only their own."""

from __future__ import annotations

from typing import Protocol

from dizimail.model.contacts import Contact, ContactGroup


class ContactStore(Protocol):
    async def list_contacts(self, account_id: int, search: str = "", group_id: int | None = None,
                            limit: int = 10_000) -> list[Contact]:
        """By name, then address; ``search``: in the name or the address (case-insensitive)."""

    async def count_contacts(self, account_id: int) -> int: ...

    async def put_contact(self, account_id: int, contact: Contact) -> int:
        """Insert (``id`` 0: a contact of the same address is updated instead) or update; its id."""

    async def put_contacts(self, account_id: int, rows: list[tuple[Contact, tuple[str, ...]]], max_contacts: int,
                           max_groups: int) -> int:
        """Many contacts at once, in one transaction (an import): each added or, its address known, updated,
        and put in the named groups (made as needed). New contacts past ``max_contacts`` and groups past
        ``max_groups`` are left out. How many contacts were stored."""

    async def delete_contact(self, account_id: int, contact_id: int) -> bool: ...

    async def list_groups(self, account_id: int) -> list[ContactGroup]:
        """By name, with their members."""

    async def put_group(self, account_id: int, group_id: int, name: str) -> int:
        """Create (``group_id`` 0) or rename; its id. Conflict when another group has the name."""

    async def delete_group(self, account_id: int, group_id: int) -> bool: ...

    async def set_member(self, account_id: int, group_id: int, contact_id: int, member: bool) -> bool:
        """False when the group or the contact is not the account's."""

    async def get_prefs(self, account_id: int) -> str | None:
        """The account's webmail preferences (JSON), None when it has none."""

    async def put_prefs(self, account_id: int, data: str) -> None: ...
