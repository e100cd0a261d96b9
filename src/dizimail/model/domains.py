"""Per-domain settings and self-registration requests (issue #11)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DomainProfile:
    domain: str
    display_name: str = ""  # shown on its users' login page ("" : the domain's name)
    logo_type: str = ""  # the logo's media type ("" : no logo)
    quota_bytes: int = 0  # storage its mailboxes may be given in all (0: no limit)
    max_users: int = 0  # mailboxes at most (0: no limit)
    self_registration: bool = False  # people may ask for a mailbox; an admin approves each


@dataclass(frozen=True)
class Registration:
    id: int
    domain: str
    local_part: str
    name: str
    password_hash: str
    created: float
    ip: str

    @property
    def address(self) -> str:
        return f"{self.local_part}@{self.domain}"
