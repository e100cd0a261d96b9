"""Change notifications between sessions of this process (IMAP IDLE, multi-session updates).

DESIGN.md §4: in-process here; between worker processes and nodes the same interface will be
served by PostgreSQL LISTEN/NOTIFY. Sessions also re-check on a timer, so a change made by
another process (the CLI) is seen within that period even without a notification.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


class Notifier:
    def __init__(self) -> None:
        self._waiters: dict[int, set[asyncio.Event]] = {}

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

    def changed(self, mailbox_ids: Iterable[int]) -> None:
        for mailbox_id in set(mailbox_ids):
            for event in self._waiters.get(mailbox_id, ()):
                event.set()
