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
    kind: str = "api"  # "api": a bearer token; "web": a browser's login session (its cookie holds the secret)

    def live(self, now: float) -> bool:
        return not self.revoked and (self.expires == 0 or now < self.expires)


@dataclass(frozen=True)
class AdminGrant:
    """An account that may administer in the browser: the whole system, or the domains it names."""

    address: str
    role: Role  # ADMIN or DOMAIN_ADMIN
    domains: tuple[str, ...]
    totp: bool  # a second factor is set up: the login asks for its code
    created: float
