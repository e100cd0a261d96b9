"""API tokens (issue #11): created by the operator (``dizimail token create``), shown once, stored as the
SHA-256 of their secret, checked on every API request, revocable, expiring.

A secret is 32 random bytes (256 bits), so a fast hash is enough to keep a stolen database from
yielding usable tokens: nothing can be guessed, and a slow hash (argon2id, as for passwords) would cost
every API call tens of milliseconds for no gain.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time

from dizimail.interfaces.tokens import TokenStore
from dizimail.model.errors import InvalidInput, NotFound
from dizimail.model.tokens import ApiToken, Role
from dizimail.services.accounts import AccountService, normalize_address, normalize_domain

log = logging.getLogger("dizimail.tokens")
PREFIX = "dzm_"  # tells a dizimail token apart in a config file or a leaked log line
MAX_SECRET = 128  # longer Authorization values are not ours: refused before hashing


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


async def domain_scope(accounts: AccountService, role: Role, domains: list[str]) -> tuple[str, ...]:
    """The domains a domain admin (token or grant) names, normalized, each an existing local domain;
    nothing for the other roles, which name none."""
    if role is not Role.DOMAIN_ADMIN:
        if domains:
            raise InvalidInput("token_domain_for_domain_admin")
        return ()
    if not domains:
        raise InvalidInput("token_needs_domain")
    ours = {d.name for d in await accounts.list_domains()}
    named = tuple(sorted({normalize_domain(d) for d in domains}))
    for name in named:
        if name not in ours:
            raise NotFound("unknown_domain", name)
    return named


class TokenService:
    def __init__(self, store: TokenStore, accounts: AccountService) -> None:
        self.store = store
        self.accounts = accounts

    async def create(self, role: Role, *, domains: list[str] | None = None, user: str = "", label: str = "",
                     lifetime: float = 0) -> tuple[ApiToken, str]:
        """A new token and its secret (the only time the secret exists outside the client). A domain
        admin names existing local domains; a user token names an existing account. ``lifetime``
        seconds, 0: until revoked."""
        named = await domain_scope(self.accounts, role, domains or [])
        subject = ""
        if role is Role.USER:
            if not user:
                raise InvalidInput("token_needs_user")
            subject = (await self.accounts.get_user(normalize_address(user))).address
        elif user:
            raise InvalidInput("token_user_for_user_role")
        if lifetime < 0:
            raise InvalidInput("bad_lifetime")
        secret = PREFIX + secrets.token_urlsafe(32)
        token = await self.store.add_token(digest(secret), role, subject, named, label.strip()[:200],
                                           time.time() + lifetime if lifetime else 0.0)
        log.info("token.created id=%d role=%s subject=%s domains=%s", token.id, role, subject, ",".join(named))
        return token, secret

    async def open_session(self, role: Role, subject: str, domains: tuple[str, ...], lifetime: float,
                           label: str) -> tuple[ApiToken, str]:
        """A web login: a token of kind ``web`` whose secret goes into the browser's cookie."""
        secret = PREFIX + secrets.token_urlsafe(32)
        token = await self.store.add_token(digest(secret), role, subject, domains, label[:200],
                                           time.time() + lifetime, kind="web")
        return token, secret

    async def verify(self, secret: str, kind: str = "api") -> ApiToken | None:
        """The live token of this kind with this secret, or None (unknown, revoked, expired or malformed)."""
        if not secret.startswith(PREFIX) or len(secret) > MAX_SECRET:
            return None
        token = await self.store.find_token(digest(secret))
        if token is None or token.kind != kind or not token.live(time.time()):
            return None
        return token

    async def end_session(self, secret: str) -> None:
        token = await self.verify(secret, "web")
        if token is not None:
            await self.store.revoke_token(token.id)

    async def list(self) -> list[ApiToken]:
        """The API tokens (web sessions are not listed)."""
        return await self.store.list_tokens()

    async def revoke(self, token_id: int) -> None:
        if all(t.id != token_id for t in await self.store.list_tokens()) or not await self.store.revoke_token(token_id):
            raise NotFound("unknown_token", str(token_id))
        log.info("token.revoked id=%d", token_id)
