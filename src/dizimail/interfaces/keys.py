"""DkimKeyStore: the DKIM signing key of each domain (RFC 6376 §3.6; private keys are secrets)."""

from __future__ import annotations

from typing import Protocol

from dizimail.model.outbound import DkimKey


class DkimKeyStore(Protocol):
    async def get_dkim_key(self, domain: str) -> DkimKey | None:
        """The key of exactly ``domain`` (lower-case), or None."""

    async def set_dkim_key(self, key: DkimKey) -> None:
        """Add or replace the key of ``key.domain``."""
