"""SearchIndex: full text of headers and text parts, Chinese-aware (DESIGN.md §3).

Documents are written with the message (MetaStore.commit_ingest, one per blob); this interface
answers queries. Matching is case-insensitive substring matching (RFC 3501 §6.4.4), which also
finds CJK words inside unsegmented text.
"""

from __future__ import annotations

from typing import Protocol


class SearchIndex(Protocol):
    async def search(self, mailbox_id: int, field: str, term: str) -> set[int]:
        """UIDs of messages in the mailbox whose ``field`` contains ``term``.

        ``field`` is one of subject, from, to, cc, bcc, headers, body, or ``text`` (headers or
        body). Messages without an index document are not returned: see :meth:`unindexed`."""

    async def unindexed(self, mailbox_id: int) -> set[int]:
        """UIDs whose text is not in the index (the caller evaluates those itself)."""
