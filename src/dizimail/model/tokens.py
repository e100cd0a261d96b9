"""API tokens (issue #11): who a bearer of the REST API is, and what it may reach."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # the whole system
    DOMAIN_ADMIN = "domain-admin"  # the domains it names, nothing else (not even their existence)
    USER = "user"  # one account's self-service


@dataclass(frozen=True)
class ApiToken:
    id: int
    role: Role
    subject: str  # the account of a user token; "" for admins
    domains: tuple[str, ...]  # a domain admin's domains (U-labels, as stored)
    label: str
    created: float
    expires: float  # 0: never
    revoked: bool

    def live(self, now: float) -> bool:
        return not self.revoked and (self.expires == 0 or now < self.expires)
