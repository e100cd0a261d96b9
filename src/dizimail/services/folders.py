"""Mailbox (folder) semantics shared by IMAP and webmail: names, hierarchy, special use.

Names are Unicode (front-ends decode modified UTF-7 or UTF-8), the hierarchy delimiter is "/",
and INBOX is case-insensitive (RFC 3501 §5.1).
"""

from __future__ import annotations

import builtins

from dizimail.interfaces import MetaStore
from dizimail.model.errors import Conflict, InvalidInput, NotFound
from dizimail.model.types import Account, MailboxInfo
from dizimail.services.notify import FolderEvent, Notifier
from dizimail.util.memo import kept_when_short

DELIMITER = "/"
MAX_NAME = 512
MAX_DEPTH = 32
SPECIAL_USES = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")


@kept_when_short()  # a session names the same few mailboxes again and again (STATUS on a timer)
def canonical_name(name: str) -> str:
    """Normalise and check a mailbox name; INBOX (any case) becomes "INBOX"."""
    if name.upper() == "INBOX" or name.upper().startswith("INBOX" + DELIMITER):
        name = "INBOX" + name[5:]
    parts = name.split(DELIMITER)
    if (not name or len(name) > MAX_NAME or len(parts) > MAX_DEPTH or any(not p for p in parts)
            or any(ord(c) < 0x20 or c in "*%" for c in name)):
        raise InvalidInput("bad_mailbox_name", name)
    return name


def superiors(names: builtins.list[str] | set[str]) -> set[str]:
    """Every proper superior of the names ("a" and "a/b" for "a/b/c"), in time linear in their
    length (a superior already seen has had its own added): "has children?" becomes a set lookup."""
    out: set[str] = set()
    for name in names:
        end = name.rfind(DELIMITER)
        while end > 0:
            parent = name[:end]
            if parent in out:
                break
            out.add(parent)
            end = name.rfind(DELIMITER, 0, end)
    return out


def within(name: str, roots: frozenset[str]) -> bool:
    """Whether ``name`` is one of ``roots`` or below one of them, in time linear in the name."""
    if name in roots:
        return True
    end = name.rfind(DELIMITER)
    while end > 0:
        if name[:end] in roots:
            return True
        end = name.rfind(DELIMITER, 0, end)
    return False


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

    async def create(self, account: Account, name: str, special_use: str | None = None, *,
                     origin: object | None = None) -> MailboxInfo:
        """RFC 3501 §6.3.3: superior names are created as needed; RFC 6154 CREATE-SPECIAL-USE.
        ``origin`` (here and below) is the notification watch of the session asking, which is
        not told of its own change (RFC 5465 §5)."""
        name = canonical_name(name.rstrip(DELIMITER))
        if special_use is not None and special_use not in SPECIAL_USES:
            raise InvalidInput("bad_special_use", special_use)
        existing = {b.name for b in await self.meta.list_mailboxes(account.id)}
        if name in existing:
            raise Conflict("mailbox_exists", name)
        created = await self._create_parents(account, name, existing)
        box = await self.meta.create_mailbox(account.id, name, special_use)
        self.notifier.folders_changed(account.id, [FolderEvent("create", n) for n in [*created, name]], origin)
        return box

    async def _create_parents(self, account: Account, name: str, existing: set[str], skip: str = "") -> builtins.list[str]:
        created: builtins.list[str] = []
        parts = name.split(DELIMITER)
        for depth in range(1, len(parts)):
            parent = DELIMITER.join(parts[:depth])
            if parent not in existing and parent != skip:
                await self.meta.create_mailbox(account.id, parent)
                created.append(parent)
        return created

    async def delete(self, account: Account, name: str, *, origin: object | None = None) -> None:
        name = canonical_name(name)
        if name == "INBOX":
            raise Conflict("cannot_delete_inbox", name)
        box = await self.get(account, name)
        await self.meta.delete_mailbox(account.id, name)
        self.notifier.changed([box.id])
        self.notifier.folders_changed(account.id, [FolderEvent("delete", name)], origin)

    async def rename(self, account: Account, old: str, new: str, *, origin: object | None = None) -> None:
        old, new = canonical_name(old), canonical_name(new)
        if new == old:
            raise Conflict("mailbox_exists", new)
        if new.startswith(old + DELIMITER):
            raise InvalidInput("rename_into_itself", new)
        source = await self.get(account, old)
        existing = {b.name for b in await self.meta.list_mailboxes(account.id)}
        if new in existing:
            raise Conflict("mailbox_exists", new)
        if old != "INBOX":  # the children move too: each new name must be a valid one, checked before any change
            for child in existing:
                if child.startswith(old + DELIMITER):
                    canonical_name(new + child[len(old):])
        created = await self._create_parents(account, new, existing, skip=old)
        if old == "INBOX":  # RFC 3501 §6.3.5: INBOX's messages move to the new name; INBOX stays, empty
            target = await self.meta.create_mailbox(account.id, new)
            uids = [m.uid for m in await self.meta.list_messages(source.id)]
            await self.meta.copy_messages(source.id, uids, target.id, move=True)
            self.notifier.changed([source.id, target.id])
        else:
            await self.meta.rename_mailbox(account.id, old, new, DELIMITER)
        # RFC 5465 §5.4: one event for the renamed mailbox (its children go with it; INBOX stays)
        events = [FolderEvent("create", n) for n in created] + [FolderEvent("rename", new, old)]
        self.notifier.folders_changed(account.id, events, origin)

    async def subscribe(self, account: Account, name: str, subscribed: bool, *, origin: object | None = None) -> None:
        name = canonical_name(name)
        await self.meta.set_subscribed(account.id, name, subscribed)
        self.notifier.folders_changed(account.id, [FolderEvent("subscribe" if subscribed else "unsubscribe", name)],
                                      origin)

    async def subscriptions(self, account: Account) -> builtins.list[str]:
        return await self.meta.list_subscriptions(account.id)
