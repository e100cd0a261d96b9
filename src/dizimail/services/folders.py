"""Mailbox (folder) semantics shared by IMAP and webmail: names, hierarchy, special use.

Names are Unicode (front-ends decode modified UTF-7 or UTF-8), the hierarchy delimiter is "/",
and INBOX is case-insensitive (RFC 3501 §5.1).
"""

from __future__ import annotations

import builtins

from dizimail.interfaces import MetaStore
from dizimail.model.errors import Conflict, InvalidInput, NotFound
from dizimail.model.types import Account, MailboxInfo
from dizimail.services.notify import Notifier

DELIMITER = "/"
MAX_NAME = 512
MAX_DEPTH = 32
SPECIAL_USES = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")


def canonical_name(name: str) -> str:
    """Normalise and check a mailbox name; INBOX (any case) becomes "INBOX"."""
    if name.upper() == "INBOX" or name.upper().startswith("INBOX" + DELIMITER):
        name = "INBOX" + name[5:]
    parts = name.split(DELIMITER)
    if (not name or len(name) > MAX_NAME or len(parts) > MAX_DEPTH or any(not p for p in parts)
            or any(ord(c) < 0x20 or c in "*%" for c in name)):
        raise InvalidInput("bad_mailbox_name", name)
    return name


class Folders:
    def __init__(self, meta: MetaStore, notifier: Notifier) -> None:
        self.meta = meta
        self.notifier = notifier

    async def list(self, account: Account) -> list[MailboxInfo]:
        return await self.meta.list_mailboxes(account.id)

    async def get(self, account: Account, name: str) -> MailboxInfo:
        box = await self.meta.get_mailbox(account.id, canonical_name(name))
        if box is None:
            raise NotFound("unknown_mailbox", name)
        return box

    async def create(self, account: Account, name: str, special_use: str | None = None) -> MailboxInfo:
        """RFC 3501 §6.3.3: superior names are created as needed; RFC 6154 CREATE-SPECIAL-USE."""
        name = canonical_name(name.rstrip(DELIMITER))
        if special_use is not None and special_use not in SPECIAL_USES:
            raise InvalidInput("bad_special_use", special_use)
        existing = {b.name for b in await self.meta.list_mailboxes(account.id)}
        if name in existing:
            raise Conflict("mailbox_exists", name)
        parts = name.split(DELIMITER)
        for depth in range(1, len(parts)):
            parent = DELIMITER.join(parts[:depth])
            if parent not in existing:
                await self.meta.create_mailbox(account.id, parent)
        return await self.meta.create_mailbox(account.id, name, special_use)

    async def delete(self, account: Account, name: str) -> None:
        name = canonical_name(name)
        if name == "INBOX":
            raise Conflict("cannot_delete_inbox", name)
        box = await self.get(account, name)
        await self.meta.delete_mailbox(account.id, name)
        self.notifier.changed([box.id])

    async def rename(self, account: Account, old: str, new: str) -> None:
        old, new = canonical_name(old), canonical_name(new)
        if new == old:
            raise Conflict("mailbox_exists", new)
        if new.startswith(old + DELIMITER):
            raise InvalidInput("rename_into_itself", new)
        source = await self.get(account, old)
        if old == "INBOX":  # RFC 3501 §6.3.5: INBOX's messages move to the new name; INBOX stays, empty
            target = await self.create(account, new)
            uids = [m.uid for m in await self.meta.list_messages(source.id)]
            await self.meta.copy_messages(source.id, uids, target.id, move=True)
            self.notifier.changed([source.id, target.id])
            return
        existing = {b.name for b in await self.meta.list_mailboxes(account.id)}
        parts = new.split(DELIMITER)
        for depth in range(1, len(parts)):
            parent = DELIMITER.join(parts[:depth])
            if parent not in existing and parent != old:
                await self.meta.create_mailbox(account.id, parent)
        await self.meta.rename_mailbox(account.id, old, new, DELIMITER)

    async def subscribe(self, account: Account, name: str, subscribed: bool) -> None:
        await self.meta.set_subscribed(account.id, canonical_name(name), subscribed)

    async def subscriptions(self, account: Account) -> builtins.list[str]:
        return await self.meta.list_subscriptions(account.id)
