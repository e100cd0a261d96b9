"""Per-domain settings (issue #11): the name and logo on its users' login page, its limits, and
self-registration.

- **Limits.** ``max_users``: mailboxes at most. ``quota_bytes``: the storage the domain's mailboxes may be
  given in all, the way hosted mail sells a domain its space: the sum of its users' quotas may not pass
  it, so with a domain quota every user has a quota of its own (none is unlimited). Checked wherever a
  mailbox is added or its quota changed (services.admin: the command line, the API and the pages; an
  approved registration). Only a system admin sets them; a domain admin sees them.
- **Self-registration.** When a domain allows it, anyone may ask for a mailbox on the users' login page;
  the request (password already hashed) waits until an admin of the domain approves (the mailbox is
  made) or rejects it. At most PENDING_PER_DOMAIN open requests per domain and PER_CLIENT a day from
  one address: a script cannot fill the list.
- **Logo.** PNG, JPEG, GIF or WebP (recognised by their first bytes, not by what the upload says), at most
  MAX_LOGO bytes. SVG is refused: it can carry script."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from dizimail.interfaces.domains import DomainProfileStore
from dizimail.model.domains import DomainProfile, Registration
from dizimail.model.errors import Conflict, InvalidInput, NotFound
from dizimail.services.accounts import AccountService, normalize_address, normalize_domain

MAX_LOGO = 256 * 1024
MAX_NAME = 100
MIN_PASSWORD = 8
PENDING_PER_DOMAIN = 200
PER_CLIENT = 5  # requests a day from one client address
IMAGE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
               (b"GIF89a", "image/gif"))


def image_type(data: bytes) -> str:
    """The media type of a logo from its first bytes; raises InvalidInput for anything else."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for magic, kind in IMAGE_TYPES:
        if data.startswith(magic):
            return kind
    raise InvalidInput("bad_logo")


class DomainProfiles:
    def __init__(self, store: DomainProfileStore, accounts: AccountService) -> None:
        self.store = store
        self.accounts = accounts

    async def _domain(self, name: str) -> str:
        name = normalize_domain(name)
        found = next((d for d in await self.accounts.list_domains() if d.name == name), None)
        if found is None or found.alias_of:
            raise NotFound("unknown_domain", name)
        return name

    async def profile(self, domain: str) -> DomainProfile:
        name = await self._domain(domain)
        return await self.store.get_profile(name) or DomainProfile(name)

    async def change(self, domain: str, *, display_name: str | None = None, quota_bytes: int | None = None,
                     max_users: int | None = None, self_registration: bool | None = None) -> DomainProfile:
        """Store what is given (None: unchanged); limits below what the domain already holds are refused."""
        current = await self.profile(domain)
        if display_name is not None and (len(display_name) > MAX_NAME or any(c in display_name for c in "\r\n")):
            raise InvalidInput("bad_display_name")
        if (quota_bytes is not None and quota_bytes < 0) or (max_users is not None and max_users < 0):
            raise InvalidInput("bad_setting")
        new = replace(current, display_name=current.display_name if display_name is None else display_name.strip(),
                      quota_bytes=current.quota_bytes if quota_bytes is None else quota_bytes,
                      max_users=current.max_users if max_users is None else max_users,
                      self_registration=current.self_registration if self_registration is None else self_registration)
        users = await self.accounts.list_users(new.domain)
        if new.max_users and len(users) > new.max_users:
            raise Conflict("limit_below_users")
        if new.quota_bytes and (any(u.quota_bytes == 0 for u in users)
                                or sum(u.quota_bytes for u in users) > new.quota_bytes):
            raise Conflict("limit_below_quotas")
        await self.store.put_profile(new)
        return new

    async def set_logo(self, domain: str, data: bytes | None) -> None:
        name = await self._domain(domain)
        if data is not None and len(data) > MAX_LOGO:
            raise InvalidInput("bad_logo")
        await self.store.set_logo(name, data, image_type(data) if data else "")

    async def logo(self, domain: str) -> tuple[bytes, str] | None:
        try:
            return await self.store.get_logo(normalize_domain(domain))
        except InvalidInput:
            return None

    async def admit_each(self, domain: str, quotas: list[int]) -> list[str | None]:
        """For new mailboxes with these quotas, in order: None for each that fits the domain's limits, else
        why not (a catalogue key); those that fit count against the limits of the ones after them."""
        profile = await self.store.get_profile(domain)
        if profile is None or not (profile.max_users or profile.quota_bytes):
            return [None] * len(quotas)
        users = await self.accounts.list_users(domain)
        count, total = len(users), sum(u.quota_bytes for u in users)
        verdicts: list[str | None] = []
        for quota in quotas:
            if profile.max_users and count >= profile.max_users:
                verdicts.append("domain_full")
            elif profile.quota_bytes and quota == 0:
                verdicts.append("quota_needed")
            elif profile.quota_bytes and total + quota > profile.quota_bytes:
                verdicts.append("domain_quota_full")
            else:
                count, total = count + 1, total + quota
                verdicts.append(None)
        return verdicts

    async def admit(self, domain: str, quota: int) -> None:
        """Raise unless one more mailbox with this quota fits the domain's limits."""
        verdict = (await self.admit_each(domain, [quota]))[0]
        if verdict is not None:
            raise (InvalidInput if verdict == "quota_needed" else Conflict)(verdict)

    async def admit_quota(self, address: str, quota: int) -> None:
        """Raise unless the mailbox may have this quota within its domain's storage."""
        domain = address.rpartition("@")[2]
        profile = await self.store.get_profile(domain)
        if profile is None or not profile.quota_bytes:
            return
        if quota == 0:
            raise InvalidInput("quota_needed")
        users = await self.accounts.list_users(domain)
        if sum(quota if u.address == address else u.quota_bytes for u in users) > profile.quota_bytes:
            raise Conflict("domain_quota_full")

    # --- self-registration ----------------------------------------------------------------------------
    async def register(self, domain: str, local_part: str, name: str, password: str, ip: str) -> None:
        """A request for a mailbox (the domain must allow it); it waits for an admin."""
        try:
            profile = await self.profile(domain)
        except (NotFound, InvalidInput):
            raise NotFound("registration_closed") from None
        if not profile.self_registration:
            raise NotFound("registration_closed")
        address = normalize_address(f"{local_part.strip()}@{profile.domain}")
        if len(password) < MIN_PASSWORD:
            raise InvalidInput("password_too_short")
        if len(name) > MAX_NAME:
            raise InvalidInput("bad_display_name")
        day = time.time() - 86400
        if (await self.store.count_registrations(ip=ip, since=day) >= PER_CLIENT
                or await self.store.count_registrations(domain=profile.domain) >= PENDING_PER_DOMAIN):
            raise Conflict("too_many_requests")
        if await self._taken(address):
            raise Conflict("address_taken")
        hashed = await asyncio.to_thread(self.accounts.hash_password, password)
        if not await self.store.add_registration(profile.domain, address.partition("@")[0], name.strip(), hashed, ip):
            raise Conflict("address_taken")

    async def _taken(self, address: str) -> bool:
        try:
            await self.accounts.get_user(address)
            return True
        except NotFound:
            domain = address.rpartition("@")[2]
            return any(a.address == address for a in await self.accounts.list_aliases(domain))

    async def pending(self, domain: str | None = None) -> list[Registration]:
        return await self.store.registrations(normalize_domain(domain) if domain is not None else None)

    async def take(self, reg_id: int) -> Registration:
        found = await self.store.take_registration(reg_id)
        if found is None:
            raise NotFound("unknown_registration", str(reg_id))
        return found

    async def forget(self, domain: str) -> None:
        await self.store.remove_profile(normalize_domain(domain))
