"""Logins in the browser (issue #11): who may administer (grants: the whole system, or named domains),
the optional second factor (TOTP, RFC 6238) of an administrator, and web sessions.

A web session is a token of kind ``web`` (services.tokens): the browser's cookie carries its secret, the
store only its SHA-256. Each request reads the account and its grant again, so a suspended account, a
changed password's ``logout everywhere`` or a revoked grant ends what a session may do at once.
The password check is the mail protocols' (AccountService.authenticate): the same lockout counts
a browser's failures, a wrong second-factor code included."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import pyotp

from dizimail.interfaces.tokens import GrantStore
from dizimail.model.errors import AuthFailed, InvalidInput, NotFound
from dizimail.model.tokens import AdminGrant, ApiToken, Role
from dizimail.services.accounts import AccountService, normalize_address
from dizimail.services.secretbox import SecretBox
from dizimail.services.tokens import TokenService, domain_scope

log = logging.getLogger("dizimail.web")
SESSION_LIFETIME = 8 * 3600.0  # a login lasts a working day
PURGE_AFTER = 7 * 86400.0  # ended sessions are forgotten a week later
ISSUER = "dizimail"


@dataclass(frozen=True)
class WebSession:
    """A live web session: its token, with the role and domains the account holds now."""

    token: ApiToken
    address: str

    @property
    def role(self) -> Role:
        return self.token.role


class WebLogins:
    def __init__(self, accounts: AccountService, tokens: TokenService, grants: GrantStore, box: SecretBox) -> None:
        self.accounts = accounts
        self.tokens = tokens
        self.grants = grants
        self.box = box
        self._used: dict[tuple[str, str], float] = {}  # (address, code) accepted lately: a code works once

    # --- grants -----------------------------------------------------------------------------------------
    async def grant(self, address: str, role: Role, domains: list[str]) -> AdminGrant:
        address = (await self.accounts.get_user(normalize_address(address))).address
        if role is Role.USER:
            raise InvalidInput("grant_role")
        return await self.grants.put_grant(address, role, await domain_scope(self.accounts, role, domains))

    async def get_grant(self, address: str) -> AdminGrant | None:
        return await self.grants.get_grant(normalize_address(address))

    async def list_grants(self) -> list[AdminGrant]:
        return await self.grants.list_grants()

    async def revoke(self, address: str) -> None:
        address = normalize_address(address)
        if not await self.grants.remove_grant(address):
            raise NotFound("unknown_grant", address)
        await self.tokens.store.revoke_subject("web", address)

    async def totp_setup(self, address: str) -> tuple[str, str]:
        """A new second factor for an administrator: its secret and the otpauth URI an authenticator app
        reads (as a QR code or typed in). The old one stops working."""
        address = normalize_address(address)
        if await self.grants.get_grant(address) is None:
            raise NotFound("unknown_grant", address)
        secret = pyotp.random_base32()
        await self.grants.set_grant_totp(address, self.box.seal(secret))
        return secret, pyotp.TOTP(secret).provisioning_uri(name=address, issuer_name=ISSUER)

    async def totp_off(self, address: str) -> None:
        address = normalize_address(address)
        if not await self.grants.set_grant_totp(address, ""):
            raise NotFound("unknown_grant", address)

    def _code_ok(self, address: str, secret: str, code: str) -> bool:
        now = time.time()
        self._used = {k: t for k, t in self._used.items() if t > now}
        code = code.strip().replace(" ", "")
        if not (code.isdigit() and len(code) == 6) or (address, code) in self._used:
            return False
        if not pyotp.TOTP(secret).verify(code, for_time=now, valid_window=1):
            return False
        self._used[(address, code)] = now + 90  # the window it is valid in: never twice
        return True

    # --- sessions ---------------------------------------------------------------------------------------
    async def login(self, address: str, password: str, code: str, ip: str, *, admin: bool) -> tuple[WebSession, str]:
        """Check the password (lockout as for every protocol) and, for the admin pages, the grant and its
        second factor; a new session and its secret. Raises LockedOut, AuthFailed (``not_admin`` for an
        account without a grant, once its password was right)."""
        account = await self.accounts.authenticate(address, password, ip)
        role: Role = Role.USER
        domains: tuple[str, ...] = ()
        if admin:
            grant = await self.grants.get_grant(account.address)
            if grant is None:
                raise _failed("not_admin", f"{account.address} is no administrator")
            sealed = await self.grants.grant_totp(account.address)
            if sealed and not self._code_ok(account.address, self.box.open(sealed), code):
                self.accounts.bad_exchange(ip)
                raise _failed("bad_code", f"wrong second-factor code for {account.address} from {ip}")
            role, domains = grant.role, grant.domains
        await self.tokens.store.purge_tokens("web", time.time() - PURGE_AFTER)
        token, secret = await self.tokens.open_session(role, account.address, domains, SESSION_LIFETIME,
                                                       f"web login from {ip}")
        log.info("web.login user=%s role=%s ip=%s", account.address, role, ip)
        return WebSession(token, account.address), secret

    async def session(self, secret: str) -> WebSession | None:
        """The live session of this cookie secret, with what the account may do now; None when the
        session ended, the account is suspended or gone, or an admin session's grant was revoked."""
        token = await self.tokens.verify(secret, "web")
        if token is None:
            return None
        try:
            account = await self.accounts.get_user(token.subject)
        except NotFound:
            return None
        if not account.active:
            return None
        if token.role is not Role.USER:
            grant = await self.grants.get_grant(account.address)
            if grant is None:
                return None
            token = replace(token, role=grant.role, domains=grant.domains)
        return WebSession(token, account.address)

    async def logout(self, secret: str) -> None:
        await self.tokens.end_session(secret)


def _failed(key: str, detail: str) -> AuthFailed:
    exc = AuthFailed(detail)
    exc.public_key = key
    return exc
