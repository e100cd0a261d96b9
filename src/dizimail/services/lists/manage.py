"""Mailing lists as the administrators change them: the CLI (``dizimail list``), the REST API and the
admin pages all call here. The moderation actions themselves (approve, reject) send mail and are in
:mod:`.receive`; the queue of held posts is listed here."""

from __future__ import annotations

import logging
import time

from dizimail.interfaces import MetaStore
from dizimail.interfaces.lists import ListStore
from dizimail.interfaces.quarantine import QuarantineStore
from dizimail.model.errors import Conflict, InvalidInput, NotFound
from dizimail.model.lists import POLICIES, SUBSCRIPTION, ListChange, ListTarget, MailingList, Member
from dizimail.model.types import Quarantined
from dizimail.services.accounts import normalize_address, normalize_domain
from dizimail.services.lists.addresses import split_command
from dizimail.util.idn import unicode_address

log = logging.getLogger("dizimail.lists")
MAX_MEMBERS_AT_ONCE = 100_000
MAX_NAMED = 200  # moderators, named senders
MAX_TEXT = 2000


def member_address(text: str) -> str:
    """An address, or ``@domain`` (every active user of a local domain)."""
    text = text.strip().lower()
    if text.startswith("@"):
        return "@" + normalize_domain(text[1:])
    return normalize_address(text)


def _names(values: tuple[str, ...] | list[str] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    out = tuple(dict.fromkeys(normalize_address(v) for v in values if v.strip()))
    if len(out) > MAX_NAMED:
        raise InvalidInput("too_many_addresses", f"{len(out)} > {MAX_NAMED}")
    return out


class MailingLists:
    def __init__(self, store: ListStore, meta: MetaStore, quarantine: QuarantineStore) -> None:
        self.store = store
        self.meta = meta
        self.quarantine = quarantine

    # --- what an address is ----------------------------------------------------------------------------
    async def target(self, address: str) -> ListTarget | None:
        """The list an address (lower-case) names, and what it asks for; None when it names none."""
        mlist = await self.store.get_list(unicode_address(address))
        if mlist is not None:
            return ListTarget(mlist)
        local, _, domain = address.rpartition("@")
        command = split_command(local)
        if command is None:
            return None
        mlist = await self.store.get_list(unicode_address(f"{command[0]}@{domain}"))
        return None if mlist is None else ListTarget(mlist, command[1], command[2])

    # --- lists ------------------------------------------------------------------------------------------
    async def create(self, address: str, *, name: str = "", description: str = "", policy: str = "members",
                     members: list[str] | None = None, moderators: list[str] | None = None,
                     senders: list[str] | None = None, subscription: str = "confirm", archive: str = "",
                     bounce_limit: int = 3) -> MailingList:
        address = normalize_address(address)
        if "+" in address.rpartition("@")[0]:
            raise InvalidInput("bad_list_address", "a list's address has no + (its command addresses use it)")
        info = await self.meta.lookup(address)
        if info.domain is None or info.domain.alias_of:
            raise NotFound("unknown_domain", address.rpartition("@")[2])
        if info.account is not None or info.alias is not None:
            raise Conflict("address_taken", address)
        change = await self._checked(ListChange(name=name, description=description, policy=policy,
                                                senders=_names(senders), moderators=_names(moderators),
                                                subscription=subscription, archive=archive,
                                                bounce_limit=bounce_limit))
        mlist = await self.store.create_list(MailingList(
            id=0, address=address, name=change.name or "", description=change.description or "",
            policy=change.policy or policy, senders=change.senders or (), moderators=change.moderators or (),
            subscription=change.subscription or subscription, archive=change.archive or "",
            bounce_limit=change.bounce_limit or bounce_limit, created=time.time()))
        if members:
            await self.add_members(address, members)
        log.info("list.created list=%s policy=%s members=%d", address, mlist.policy, len(members or []))
        return await self.get(address)

    async def _checked(self, change: ListChange) -> ListChange:
        if change.policy is not None and change.policy not in POLICIES:
            raise InvalidInput("bad_policy", f"{change.policy}: one of {', '.join(POLICIES)}")
        if change.subscription is not None and change.subscription not in SUBSCRIPTION:
            raise InvalidInput("bad_subscription", f"{change.subscription}: one of {', '.join(SUBSCRIPTION)}")
        for text in (change.name, change.description):
            if text is not None and (len(text) > MAX_TEXT or any(c in text for c in "\r\n\0")):
                raise InvalidInput("bad_text", "one line, at most 2000 characters")
        if change.bounce_limit is not None and not 1 <= change.bounce_limit <= 100:
            raise InvalidInput("bad_bounce_limit", str(change.bounce_limit))
        if change.archive:
            archive = normalize_address(change.archive)
            if (await self.meta.lookup(archive)).account is None:
                raise NotFound("unknown_user", archive)
            change = ListChange(**{**change.__dict__, "archive": archive})
        return change

    async def get(self, address: str) -> MailingList:
        mlist = await self.store.get_list(unicode_address(address.strip().lower()))
        if mlist is None:
            raise NotFound("unknown_list", address)
        return mlist

    async def all(self, domain: str | None = None) -> list[MailingList]:
        return await self.store.list_lists(normalize_domain(domain) if domain else None)

    async def change(self, address: str, change: ListChange) -> MailingList:
        mlist = await self.get(address)
        change = ListChange(**{**change.__dict__, "senders": _names(change.senders),
                               "moderators": _names(change.moderators)})
        await self.store.update_list(mlist.address, await self._checked(change))
        log.info("list.changed list=%s %s", mlist.address,
                 " ".join(f"{k}={v!r}" for k, v in change.__dict__.items() if v is not None))
        return await self.get(mlist.address)

    async def remove(self, address: str) -> None:
        mlist = await self.get(address)
        held = await self.held(mlist.address)
        for entry in held:
            await self.quarantine.delete_quarantined(entry.id)
        await self.store.delete_list(mlist.address)
        log.info("list.removed list=%s held_dropped=%d", mlist.address, len(held))

    # --- members ----------------------------------------------------------------------------------------
    async def members(self, address: str) -> list[Member]:
        return await self.store.members((await self.get(address)).id)

    async def add_members(self, address: str, addresses: list[str]) -> int:
        mlist = await self.get(address)
        if len(addresses) > MAX_MEMBERS_AT_ONCE:
            raise InvalidInput("too_many_addresses", f"{len(addresses)} > {MAX_MEMBERS_AT_ONCE}")
        checked = [member_address(a) for a in addresses if a.strip()]
        for a in checked:
            if a.startswith("@") and (await self.meta.get_domain(a[1:])) is None:
                raise NotFound("unknown_domain", a[1:])
            if a == mlist.address:
                raise InvalidInput("bad_member", "a list cannot be its own member")
        added = await self.store.add_members(mlist.id, checked, time.time())
        log.info("list.members.added list=%s count=%d", mlist.address, added)
        return added

    async def remove_members(self, address: str, addresses: list[str]) -> int:
        mlist = await self.get(address)
        removed = await self.store.remove_members(mlist.id, [member_address(a) for a in addresses if a.strip()])
        log.info("list.members.removed list=%s count=%d", mlist.address, removed)
        return removed

    async def may_post(self, mlist: MailingList, sender: str) -> bool:
        """Whether ``sender`` may post without moderation (policy ``moderated``: moderators and named
        senders only)."""
        if sender in mlist.moderators or sender in mlist.senders:
            return True
        if mlist.policy == "anyone":
            return True
        if mlist.policy == "members":
            return await self.store.is_member(mlist.id, sender)
        return False

    # --- the moderation queue ---------------------------------------------------------------------------
    async def held(self, address: str) -> list[Quarantined]:
        """Posts waiting for a moderator, newest first."""
        mlist = await self.get(address)
        return await self.quarantine.list_quarantine(lists=True, reason=mlist.address)

    async def held_post(self, address: str, entry_id: int) -> tuple[MailingList, Quarantined]:
        mlist = await self.get(address)
        entry = await self.quarantine.get_quarantined(entry_id)
        if entry is None or entry.kind != "list" or entry.reason != mlist.address:
            raise NotFound("unknown_held_post", f"{mlist.address} #{entry_id}")
        return mlist, entry
