"""TokenStore: API tokens, kept by the SHA-256 of their secret (the secret itself is never stored)."""

from __future__ import annotations

from typing import Protocol

from dizimail.model.tokens import ApiToken, Role


class TokenStore(Protocol):
    async def add_token(self, digest: bytes, role: Role, subject: str, domains: tuple[str, ...], label: str,
                        expires: float) -> ApiToken:
        """Store a new token; ``digest`` is the SHA-256 of its secret."""

    async def find_token(self, digest: bytes) -> ApiToken | None:
        """The token whose secret has this digest (revoked and expired ones too), or None."""

    async def list_tokens(self) -> list[ApiToken]: ...

    async def revoke_token(self, token_id: int) -> bool:
        """Mark it revoked (kept, for the record); False if there is no such token."""
