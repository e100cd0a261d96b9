"""Operator view of the outbound queue (delivery itself arrives with the queue runner)."""

from __future__ import annotations

from dizimail.interfaces import QueueStore
from dizimail.model.types import QueueEntry


class QueueService:
    def __init__(self, store: QueueStore) -> None:
        self.store = store

    async def list(self) -> list[QueueEntry]:
        return await self.store.list_queue()
