"""AuditStore: the append-only audit log of administrative actions (issue #11)."""

from __future__ import annotations

from typing import Protocol

from dizimail.model.audit import AuditEntry


class AuditStore(Protocol):
    async def append_audit(self, at: float, actor: str, role: str, ip: str, action: str, target: str, domain: str,
                           before: str, after: str) -> None: ...

    async def audit_entries(self, *, domains: tuple[str, ...] | None = None, actor: str = "", action: str = "",
                            since: float = 0.0, until: float = 0.0, before_id: int = 0,
                            limit: int = 100) -> list[AuditEntry]:
        """Newest first. ``domains``: only entries of these domains (None: every entry); ``action`` matches
        a prefix (``user.`` for every user action); ``before_id`` pages backwards."""
