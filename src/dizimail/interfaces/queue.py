"""QueueStore: messages waiting for (remote or retried) delivery, status per recipient.

States are documented in docs/queue.md. Items are written by
``MetaStore.commit_ingest`` in the same transaction as local deliveries.
"""

from __future__ import annotations

from typing import Protocol

from dizimail.model.types import QueueEntry


class QueueStore(Protocol):
    async def list_queue(self) -> list[QueueEntry]:
        """Every message with at least one recipient still pending, oldest first."""
