"""Entries of the operator's block and allow lists (anti-spam layer 1, DESIGN.md §5)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ListName(StrEnum):
    BLOCK = "block"
    ALLOW = "allow"


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One line of a list. ``scope`` is "" for the whole server or the domain whose recipients it
    guards; ``pattern`` is normalised (services.access.parse_pattern): an IP network in CIDR form,
    ``user@domain`` (one sender), ``@domain`` (a domain's senders) or ``*.domain`` (its subdomains')."""

    list: ListName
    scope: str
    pattern: str
    note: str = ""
    created: float = 0.0
