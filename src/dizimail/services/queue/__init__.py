"""The outbound queue: operator actions here, delivery in :mod:`runner`, notices in :mod:`dsn`.

Every action is a change in the QueueStore that the running runner sees at its
next look (``delivery.poll_interval``), so the command line works on a live
server without any signal or restart.
"""

from __future__ import annotations

import asyncio
import time

from dizimail.interfaces import BlobStore, QueueStore, SettingsStore
from dizimail.model.errors import InvalidInput, NotFound
from dizimail.model.outbound import QueueItem
from dizimail.model.types import QueueEntry

SETTING_CONCURRENCY = "delivery.concurrency"
SETTING_DESTINATION = "delivery.destination_concurrency"


class QueueService:
    def __init__(self, store: QueueStore, settings: SettingsStore | None = None, blobs: BlobStore | None = None) -> None:
        self.store = store
        self.settings = settings
        self.blobs = blobs

    async def list(self) -> list[QueueEntry]:
        return await self.store.list_queue()

    async def show(self, queue_id: str) -> QueueItem:
        item = await self.store.get_item(queue_id)
        if item is None:
            raise NotFound("unknown_queue_id", queue_id)
        return item

    async def headers(self, item: QueueItem, limit: int = 64 * 1024) -> bytes:
        """What ``queue show`` prints of a message: its queued prefix (a DKIM signature) and the header
        section of the blob as received, at most ``limit`` bytes of it."""
        assert self.blobs is not None
        blobs = self.blobs

        def read() -> bytes:
            with blobs.open(item.blob_id) as handle:
                return handle.read(limit)
        head = await asyncio.to_thread(read)
        end = head.find(b"\r\n\r\n")
        return item.prefix + (head if end < 0 else head[:end + 2])

    async def retry(self, queue_id: str | None) -> int:
        """Make one message (or, with None, every message: flush) due now."""
        if queue_id is not None:
            await self.show(queue_id)
        return await self.store.retry_now(queue_id, time.time())

    async def hold(self, queue_id: str | None) -> int:
        if queue_id is not None:
            await self.show(queue_id)
        return await self.store.set_held(queue_id, True)

    async def release(self, queue_id: str | None) -> int:
        if queue_id is not None:
            await self.show(queue_id)
        return await self.store.set_held(queue_id, False)

    async def delete(self, queue_id: str) -> None:
        if not await self.store.delete(queue_id):
            raise NotFound("unknown_queue_id", queue_id)

    async def set_concurrency(self, total: int | None, per_destination: int | None) -> None:
        """Change the delivery concurrency of running nodes (read by the runner every poll interval)."""
        assert self.settings is not None
        for key, value in ((SETTING_CONCURRENCY, total), (SETTING_DESTINATION, per_destination)):
            if value is None:
                continue
            if not 1 <= value <= 1000:
                raise InvalidInput("bad_setting", f"{key}={value}")
            await self.settings.set_setting(key, str(value))

    async def concurrency(self, default_total: int, default_per: int) -> tuple[int, int]:
        assert self.settings is not None
        total = await self.settings.get_setting(SETTING_CONCURRENCY)
        per = await self.settings.get_setting(SETTING_DESTINATION)
        return int(total) if total else default_total, int(per) if per else default_per
