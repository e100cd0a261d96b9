"""Mail traffic per day and domain (issue #11: the dashboard's numbers of today, the monthly usage report)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Flow(StrEnum):
    IN = "in"  # accepted for a local recipient of the domain (one per recipient)
    OUT = "out"  # accepted from a user of the domain for another domain (one per message)
    DELIVERED = "delivered"  # handed to another server (one per recipient, by the sender's domain)
    BOUNCED = "bounced"  # given up (one per recipient, by the sender's domain)


@dataclass(frozen=True)
class TrafficRow:
    day: str  # YYYY-MM-DD
    domain: str
    flow: Flow
    messages: int
    bytes: int


@dataclass(frozen=True)
class DomainUsage:
    """One line of the usage report: a domain in a month."""

    domain: str
    mailboxes: int
    used_bytes: int
    messages_in: int
    bytes_in: int
    messages_out: int
    bytes_out: int
