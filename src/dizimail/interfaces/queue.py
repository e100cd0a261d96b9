"""QueueStore: messages waiting for (remote or retried) delivery, status per recipient.

States and transitions are documented in docs/queue.md. Items are written by
``MetaStore.commit_ingest`` in the same transaction as local deliveries. Runners
take items with a *lease* (owner, expiry) that they renew while working; a lease
that expires (its runner died) makes the item due again, so nothing queued is
lost and, in the normal case, nothing delivered is sent twice (the window is
the one RFC 5321 §6.1 accepts: between the remote 250 and our commit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from dizimail.model.outbound import QueueItem, RecipientOutcome
from dizimail.model.types import QueueEntry


class QueueStore(Protocol):
    async def list_queue(self) -> list[QueueEntry]:
        """Every message with at least one recipient still pending, oldest first."""

    async def get_item(self, queue_id: str) -> QueueItem | None:
        """One message with all its recipients (delivered and failed ones too), for ``queue show``."""

    async def lease(self, owner: str, now: float, expiry: float, limit: int) -> list[QueueItem]:
        """Lease up to ``limit`` messages that are not held, have a pending recipient due at ``now``
        and no live lease; returns them with their pending recipients only."""

    async def renew(self, owner: str, queue_ids: Sequence[str], expiry: float) -> None:
        """Extend the leases ``owner`` holds on these messages."""

    async def release_all(self, owner: str) -> int:
        """Drop every lease ``owner`` holds (a runner starting again after a crash); returns how many."""

    async def settle(self, owner: str, queue_id: str, outcomes: Sequence[RecipientOutcome], *,
                     warned: bool = False, release: bool = False) -> bool:
        """Record per-recipient outcomes (and that a delay warning went out). With ``release``, drop the
        lease; a message with no pending recipient left is removed and its blob reference released.
        Returns True when the message is gone from the queue."""

    async def set_held(self, queue_id: str | None, held: bool) -> int:
        """Hold or release one message (or all with None); returns how many changed."""

    async def retry_now(self, queue_id: str | None, now: float) -> int:
        """Make pending recipients of one message (or all) due at ``now``; returns how many messages."""

    async def delete(self, queue_id: str) -> bool:
        """Remove a message from the queue without delivering it (operator action)."""
