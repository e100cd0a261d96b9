"""The audit log (issue #11): who did what to which object, when and from where, with its state before
and after (never a password)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """Who acts: ``cli:USER`` for the command line (the Unix user, or whoever ran sudo), ``token:ID`` for
    an API token; ``ip`` where the request came from ("" on the command line)."""

    name: str
    ip: str = ""
    role: str = "admin"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    role: str
    ip: str
    action: str  # e.g. domain.add, user.quota, token.revoke
    target: str  # the object: a domain, an address, a token id
    domain: str  # the domain it belongs to ("" for the whole system): what a domain admin may see
    before: str  # JSON of the object before ("" when it did not exist)
    after: str  # JSON after ("" when it is gone)
