"""QuarantineStore: messages held for a human instead of delivered (a virus, a spam score past the
line). Entries are written and released by ``MetaStore.commit_ingest`` (``IngestRecord.quarantine`` and
``released``), in the same transaction as the blob reference they hold or the deliveries that replace
them; this store lists, deletes and expires them."""

from __future__ import annotations

from typing import Protocol

from dizimail.model.types import Quarantined


class QuarantineStore(Protocol):
    async def list_quarantine(self, limit: int = 10_000, *, lists: bool = False,
                              reason: str | None = None) -> list[Quarantined]:
        """The newest ``limit`` entries, newest first: spam and viruses, or (``lists``) only the posts
        waiting for a list's moderator (kind ``list``); ``reason``: only those held for that reason (a
        held post's reason is its list's address)."""

    async def get_quarantined(self, entry_id: int) -> Quarantined | None: ...

    async def delete_quarantined(self, entry_id: int) -> bool:
        """Remove the entry and drop its blob reference; False if there was none."""

    async def expire_quarantine(self, now: float, limit: int = 1000) -> int:
        """Delete up to ``limit`` entries whose time ran out before ``now``; how many."""
