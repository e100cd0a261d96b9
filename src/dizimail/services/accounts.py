"""Domains, accounts and aliases, and authentication (argon2id, credential cache, lockout)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from dizimail.config.schema import AuthConfig
from dizimail.interfaces import MetaStore
from dizimail.model.errors import AuthFailed, InvalidInput, MailError, NotFound
from dizimail.model.types import ACTIVE, SUSPENDED, Account, Alias, Domain
from dizimail.services.lockout import FailureTracker as FailureTracker  # re-exported: net.listener uses it
from dizimail.util.charclass import from_up
from dizimail.util.idn import unicode_domain

log = logging.getLogger("dizimail.auth")

# Classes of ASCII plus U+0080 and up (util.charclass: the same sets, compiled 10x faster).
_LET_DIG, _LDH = from_up("a-z0-9", 0x80), from_up("a-z0-9-", 0x80)
_LABEL = rf"(?:{_LET_DIG}(?:{_LDH}{{0,61}}{_LET_DIG})?)"
_DOMAIN_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})+$")
_ATOM = from_up("a-z0-9!#$%&'*+/=?^_`{|}~-", 0x80)
_LOCAL_RE = re.compile(rf"^{_ATOM}+(?:\.{_ATOM}+)*$")


def normalize_domain(name: str) -> str:
    """Lower-case, no final dot, U-labels (xn--tfr181f.cn and 电力。cn are both 电力.cn: util.idn)."""
    try:
        domain = unicode_domain(name)
    except ValueError:
        raise InvalidInput("bad_domain", name) from None
    if len(domain) > 253 or not _DOMAIN_RE.match(domain):
        raise InvalidInput("bad_domain", domain)
    return domain


def normalize_address(address: str) -> str:
    """Lower-case and check ``local@domain`` (dot-atom local parts, UTF-8 allowed: RFC 6531)."""
    address = address.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or len(local.encode()) > 64 or not _LOCAL_RE.match(local):
        raise InvalidInput("bad_address", address)
    return f"{local}@{normalize_domain(domain)}"


@dataclass
class _Cached:
    password_hash: str
    expires: float


class AccountService:
    def __init__(self, meta: MetaStore, config: AuthConfig, hasher: PasswordHasher | None = None) -> None:
        self.meta = meta
        self.config = config
        self.hasher = hasher or PasswordHasher(time_cost=config.argon2_time_cost,
                                               memory_cost=config.argon2_memory_cost,
                                               parallelism=config.argon2_parallelism)
        # Bulk imports hash at a lower argon2id cost so 5,000 users import in seconds; the
        # hash is upgraded to the full cost at the user's first login (check_needs_rehash).
        self.import_hasher = PasswordHasher(time_cost=config.import_time_cost,
                                            memory_cost=config.import_memory_cost,
                                            parallelism=config.argon2_parallelism)
        self.failures = FailureTracker(config)
        self._plaintext_nets = [ipaddress.ip_network(n, strict=False) for n in config.plaintext_networks]
        # Dovecot-style auth cache: keyed by a salted digest of (address, password); an entry is
        # valid only while the account's stored hash is unchanged and the account is active.
        self._salt = secrets.token_bytes(32)
        self._cache: dict[bytes, _Cached] = {}
        # Verified instead of a missing or suspended account's hash, so that every failed login costs
        # one argon2 verify and the answer's timing does not tell which accounts exist. Made at first
        # use (with self.hasher's parameters): the command line builds this service for every command.
        self._dummy_hash: str | None = None
        self.login_hooks: list[Callable[[Account], None]] = []  # e.g. fetch the user's external mail now

    def auth_refused(self, ip: str) -> bool:
        """Whether a client at ``ip`` may not even try to authenticate now (locked out after failed logins).

        For listeners that authenticate (submission, IMAP, POP3), to refuse at connect. Never for port 25:
        the lockout is for authentication, not for receiving mail.
        """
        return self.failures.is_locked(ip)

    def bad_exchange(self, ip: str) -> None:
        """A malformed SASL exchange from ``ip`` (bad base64, over-long line): counts as a failed login of
        the client, against no account. A cancelled exchange ("*") does not count: it tried nothing."""
        self.failures.record_failure(ip)

    def plaintext_allowed(self, ip: str) -> bool:
        """Whether a client at ``ip`` may authenticate without TLS (config: auth.allow_plaintext,
        auth.plaintext_networks)."""
        if self.config.allow_plaintext:
            return True
        if not self._plaintext_nets:
            return False
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self._plaintext_nets)

    # --- passwords -----------------------------------------------------
    def hash_password(self, password: str) -> str:
        if not password:
            raise InvalidInput("empty_password")
        return self.hasher.hash(password)

    def _import_hash(self, password: str) -> str:
        """Exported rows carry argon2id hashes: keep them as they are, hash anything else."""
        if password.startswith("$argon2id$"):
            return password
        if not password:
            raise InvalidInput("empty_password")
        return self.import_hasher.hash(password)

    async def authenticate(self, address: str, password: str, ip: str) -> Account:
        """Verify a login (RFC 4954 / RFC 1939 / RFC 3501 all end here). Raises LockedOut, AuthFailed.

        Limits (services.lockout): the client's slot is taken before anything is awaited; an account
        with recent failures makes the attempt wait first. Unknown and suspended accounts cost one
        argon2 verify like a wrong password.
        """
        try:
            name = normalize_address(address)
        except InvalidInput:
            name = address.strip().lower()[:320]  # still counted: the delay must not tell names apart
        attempt = await self.failures.begin(ip, name)
        try:
            account = await self._checked(name, password, attempt.delay)
            if account is None:
                self.failures.failed(attempt)
                raise AuthFailed(f"login failed for {address!r} from {ip}")
            self.failures.succeeded(attempt)
        finally:
            self.failures.end(attempt)
        for hook in self.login_hooks:
            hook(account)
        return account

    async def _checked(self, name: str, password: str, delay: float) -> Account | None:
        """The account if ``password`` is its password, else None (after the same work either way)."""
        if self._dummy_hash is None:  # whatever the first attempt is, it pays for this, not only an unknown name
            self._dummy_hash = await asyncio.to_thread(self.hasher.hash, secrets.token_urlsafe(24))
        account = await self._lookup(name)
        if account is not None and account.active and self._cache_hit(account, password):
            return account  # verified lately: the owner's clients do not wait the delay again
        if delay:
            await asyncio.sleep(delay)
            account = await self._lookup(name)  # it may have changed meanwhile
        if account is None or not account.active:
            await self._verify_hash(self._dummy_hash, password)
            return None
        return account if await self._verify(account, password) else None

    async def _lookup(self, name: str) -> Account | None:
        try:
            return await self.meta.get_account(normalize_address(name))
        except InvalidInput:
            return None

    def _cache_key(self, account: Account, password: str) -> bytes:
        return hmac.new(self._salt, f"{account.address}\0{password}".encode(), hashlib.sha256).digest()

    def _cache_hit(self, account: Account, password: str) -> bool:
        hit = self._cache.get(self._cache_key(account, password))
        return (hit is not None and hit.expires > time.monotonic()
                and hmac.compare_digest(hit.password_hash, account.password_hash))

    async def _verify_hash(self, password_hash: str, password: str) -> bool:
        try:
            return bool(await asyncio.to_thread(self.hasher.verify, password_hash, password))
        except (VerificationError, InvalidHashError):
            return False

    async def _verify(self, account: Account, password: str) -> bool:
        key = self._cache_key(account, password)
        if not await self._verify_hash(account.password_hash, password):
            self._cache.pop(key, None)
            return False
        now = time.monotonic()
        if len(self._cache) > 100_000:
            self._cache = {k: v for k, v in self._cache.items() if v.expires > now}
        self._cache[key] = _Cached(account.password_hash, now + self.config.cache_ttl)
        if self.hasher.check_needs_rehash(account.password_hash):
            await self._upgrade_hash(account, password)
        return True

    async def _upgrade_hash(self, account: Account, password: str) -> None:
        new_hash = await asyncio.to_thread(self.hasher.hash, password)
        try:
            await self.meta.update_account(account.address, password_hash=new_hash)
        except MailError:  # the account went away meanwhile: the login still succeeded
            log.warning("auth.rehash.failed user=%s", account.address)
            return
        self._cache[self._cache_key(account, password)] = _Cached(new_hash, time.monotonic() + self.config.cache_ttl)
        log.info("auth.rehashed user=%s", account.address)

    # --- domains -------------------------------------------------------
    async def add_domain(self, name: str, alias_of: str | None = None) -> Domain:
        return await self.meta.add_domain(normalize_domain(name),
                                          normalize_domain(alias_of) if alias_of else None)

    async def list_domains(self) -> list[Domain]:
        return await self.meta.list_domains()

    async def postmaster(self, hostname: str) -> str:
        """RFC 5321 §4.5.1: where <Postmaster> (and mail a human must see) goes: the postmaster of the
        first local domain, or of ``hostname`` when there is none (a gateway)."""
        domains = [d for d in await self.meta.list_domains() if d.alias_of is None]
        return f"postmaster@{domains[0].name}" if domains else f"postmaster@{hostname}"

    async def remove_domain(self, name: str) -> None:
        await self.meta.remove_domain(normalize_domain(name))

    async def set_domain_active(self, name: str, active: bool) -> None:
        await self.meta.set_domain_status(normalize_domain(name), ACTIVE if active else SUSPENDED)

    # --- users ---------------------------------------------------------
    async def add_user(self, address: str, password: str, name: str = "", quota_bytes: int = 0) -> None:
        address = normalize_address(address)
        hashed = await asyncio.to_thread(self.hash_password, password)
        (error,) = await self.meta.add_accounts([(address, hashed, name, quota_bytes)])
        if error:
            raise InvalidInput(error, address)

    async def add_users(self, rows: list[tuple[str, str, str, int]]) -> list[str | None]:
        """Bulk creation (import): ``(address, password, name, quota)``; hashing runs on every core."""
        prepared: list[tuple[str, str, str, int]] = []
        errors: list[str | None] = []
        for address, password, name, quota in rows:
            try:
                if not password:
                    raise InvalidInput("empty_password")
                prepared.append((normalize_address(address), password, name, quota))
                errors.append(None)
            except InvalidInput as exc:
                errors.append(exc.public_key)
        hashes = await asyncio.gather(*(asyncio.to_thread(self._import_hash, p) for _, p, _, _ in prepared))
        stored = await self.meta.add_accounts([(a, h, n, q) for (a, _, n, q), h in zip(prepared, hashes, strict=True)])
        it = iter(stored)
        return [e if e is not None else next(it) for e in errors]

    async def get_user(self, address: str) -> Account:
        account = await self.meta.get_account(normalize_address(address))
        if account is None:
            raise NotFound("unknown_user", address)
        return account

    async def list_users(self, domain: str | None = None) -> list[Account]:
        return await self.meta.list_accounts(normalize_domain(domain) if domain else None)

    async def page_users(self, domain: str, *, after: str = "", search: str = "", limit: int = 100) -> list[Account]:
        """A page of a domain's users (the admin's user list: 5,000 users are not sent at once)."""
        return await self.meta.page_accounts(normalize_domain(domain), after=after.lower(), search=search[:200],
                                             limit=max(1, min(limit, 1000)))

    async def set_password(self, address: str, password: str) -> None:
        hashed = await asyncio.to_thread(self.hash_password, password)
        await self.meta.update_account(normalize_address(address), password_hash=hashed)

    async def set_user_active(self, address: str, active: bool) -> None:
        await self.meta.update_account(normalize_address(address), status=ACTIVE if active else SUSPENDED)

    async def set_quota(self, address: str, quota_bytes: int) -> None:
        if quota_bytes < 0:
            raise InvalidInput("bad_quota", str(quota_bytes))
        await self.meta.update_account(normalize_address(address), quota_bytes=quota_bytes)

    async def set_name(self, address: str, name: str) -> None:
        if len(name) > 200 or any(c in name for c in "\r\n\0"):
            raise InvalidInput("bad_display_name")
        await self.meta.update_account(normalize_address(address), name=name.strip())

    async def remove_user(self, address: str) -> None:
        await self.meta.remove_account(normalize_address(address))

    # --- aliases -------------------------------------------------------
    async def add_alias(self, address: str, targets: list[str]) -> None:
        if not targets:
            raise InvalidInput("alias_needs_target", address)
        await self.meta.add_alias(normalize_address(address), [normalize_address(t) for t in targets])

    async def list_aliases(self, domain: str | None = None) -> list[Alias]:
        return await self.meta.list_aliases(normalize_domain(domain) if domain else None)

    async def remove_alias(self, address: str) -> None:
        await self.meta.remove_alias(normalize_address(address))
