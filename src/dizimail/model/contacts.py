"""A user's address book (issue #13): contacts and groups, kept per account."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Contact:
    id: int
    name: str
    email: str
    phone: str = ""
    org: str = ""
    note: str = ""
    groups: tuple[int, ...] = ()  # the ids of the groups it is in


@dataclass(frozen=True)
class ContactGroup:
    id: int
    name: str
    members: tuple[int, ...] = ()  # contact ids
