"""TokenStore: API tokens and web sessions, kept by the SHA-256 of their secret (the secret itself is never
stored); GrantStore: the accounts that may administer in the browser."""

from __future__ import annotations

from typing import Protocol

from dizimail.model.tokens import AdminGrant, ApiToken, Role


class TokenStore(Protocol):
    async def add_token(self, digest: bytes, role: Role, subject: str, domains: tuple[str, ...], label: str,
                        expires: float, kind: str = "api") -> ApiToken:
        """Store a new token; ``digest`` is the SHA-256 of its secret."""

    async def find_token(self, digest: bytes) -> ApiToken | None:
        """The token whose secret has this digest (revoked and expired ones too), or None."""

    async def list_tokens(self, kind: str = "api") -> list[ApiToken]: ...

    async def purge_tokens(self, kind: str, ended_before: float) -> int:
        """Forget tokens of this kind that expired or were revoked before then (old web sessions)."""

    async def revoke_subject(self, kind: str, subject: str) -> int:
        """Revoke every live token of this kind for this account (its web sessions, at logout everywhere)."""

    async def revoke_token(self, token_id: int) -> bool:
        """Mark it revoked (kept, for the record); False if there is no such token."""


class GrantStore(Protocol):
    async def get_grant(self, address: str) -> AdminGrant | None: ...

    async def list_grants(self) -> list[AdminGrant]: ...

    async def put_grant(self, address: str, role: Role, domains: tuple[str, ...]) -> AdminGrant:
        """Grant (or change) the account's role; a TOTP secret already set stays."""

    async def remove_grant(self, address: str) -> bool: ...

    async def grant_totp(self, address: str) -> str:
        """The sealed TOTP secret ("" when none)."""

    async def set_grant_totp(self, address: str, sealed: str) -> bool: ...
