"""Change notifications between sessions of this process (IMAP IDLE and NOTIFY, multi-session updates).

DESIGN.md §4: in-process here; between worker processes and nodes the same interface will be
served by PostgreSQL LISTEN/NOTIFY. Sessions also re-check the selected mailbox on a timer, so a
change made by another process (the CLI) is seen within that period even without a notification.

Two kinds of news travel here: "mailbox m changed" (messages, flags, expunges; ``changed``) and
"the account's mailbox list changed" (create, delete, rename, subscribe; ``folders_changed``),
the events of RFC 5423 that IMAP NOTIFY (RFC 5465 §5) reports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

FolderChange = Literal["create", "delete", "rename", "subscribe", "unsubscribe"]


@dataclass(frozen=True, slots=True)
class FolderEvent:
    """A change to an account's mailbox list (RFC 5423 §4.3 MailboxCreate, MailboxDelete,
    MailboxRename, MailboxSubscribe, MailboxUnSubscribe); ``old_name`` only for renames."""

    kind: FolderChange
    name: str
    old_name: str | None = None


@dataclass
class News:
    """What a :class:`Watch` heard since it last looked: the watched mailboxes that changed, the
    changes to the mailbox list made by others (in order), and whether the list changed at all
    (the watcher's own changes included: it must recompute what it watches, RFC 5465 §6.4)."""

    changed: set[int] = field(default_factory=set)
    folders: list[FolderEvent] = field(default_factory=list)
    list_changed: bool = False


class Watch:
    """One listener's mailbox of news; ``ready`` is set while news waits for :meth:`take`."""

    def __init__(self, account_id: int) -> None:
        self.account_id = account_id
        self.mailboxes: frozenset[int] = frozenset()
        self.ready = asyncio.Event()
        self._news = News()

    def take(self) -> News:
        news, self._news = self._news, News()
        self.ready.clear()
        return news

    def _mailbox_changed(self, mailbox_id: int) -> None:
        self._news.changed.add(mailbox_id)
        self.ready.set()

    def _folder_changed(self, events: list[FolderEvent], own: bool) -> None:
        if not own:
            self._news.folders.extend(events)
        self._news.list_changed = True
        self.ready.set()


class Notifier:
    def __init__(self) -> None:
        # Also told of every "mailbox changed" here: how a process without sessions of its own
        # (the queue-runner child) passes its local deliveries on to the node's sessions.
        self.forward: Callable[[set[int]], None] | None = None
        self._waiters: dict[int, set[asyncio.Event]] = {}
        self._watch_by_mailbox: dict[int, set[Watch]] = {}
        self._watch_by_account: dict[int, set[Watch]] = {}

    def listen(self, mailbox_id: int) -> asyncio.Event:
        """An event set whenever the mailbox changes; the caller clears it and must :meth:`unlisten`."""
        event = asyncio.Event()
        self._waiters.setdefault(mailbox_id, set()).add(event)
        return event

    def unlisten(self, mailbox_id: int, event: asyncio.Event) -> None:
        waiters = self._waiters.get(mailbox_id)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[mailbox_id]

    def watch(self, account_id: int) -> Watch:
        """A :class:`Watch` on the account's mailbox list; :meth:`set_mailboxes` adds mailboxes to
        it. The caller must :meth:`unwatch` it."""
        watch = Watch(account_id)
        self._watch_by_account.setdefault(account_id, set()).add(watch)
        return watch

    def set_mailboxes(self, watch: Watch, mailbox_ids: Iterable[int]) -> None:
        """Replace the mailboxes whose changes ``watch`` hears of."""
        wanted = frozenset(mailbox_ids)
        for mailbox_id in watch.mailboxes - wanted:
            self._drop(self._watch_by_mailbox, mailbox_id, watch)
        for mailbox_id in wanted - watch.mailboxes:
            self._watch_by_mailbox.setdefault(mailbox_id, set()).add(watch)
        watch.mailboxes = wanted

    def unwatch(self, watch: Watch) -> None:
        self.set_mailboxes(watch, ())
        self._drop(self._watch_by_account, watch.account_id, watch)

    @staticmethod
    def _drop(table: dict[int, set[Watch]], key: int, watch: Watch) -> None:
        watches = table.get(key)
        if watches is not None:
            watches.discard(watch)
            if not watches:
                del table[key]

    def changed(self, mailbox_ids: Iterable[int]) -> None:
        """Messages, flags or expunges changed in these mailboxes."""
        ids = set(mailbox_ids)
        if self.forward is not None and ids:
            self.forward(ids)
        for mailbox_id in ids:
            for event in self._waiters.get(mailbox_id, ()):
                event.set()
            for watch in self._watch_by_mailbox.get(mailbox_id, ()):
                watch._mailbox_changed(mailbox_id)

    def folders_changed(self, account_id: int, events: list[FolderEvent], origin: object | None = None) -> None:
        """The account's mailbox list changed. ``origin`` (a :class:`Watch`) is the session that
        made the change: it is not told of its own doing (RFC 5465 §5)."""
        if not events:
            return
        for watch in self._watch_by_account.get(account_id, ()):
            watch._folder_changed(list(events), own=watch is origin)
