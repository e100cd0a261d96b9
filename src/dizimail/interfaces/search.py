"""SearchIndex: full text of headers and text parts, Chinese-aware (DESIGN.md §3).

Documents are added by the node's indexer shortly after a message is committed (one per blob,
off the SMTP critical path); until then a message is "unindexed" and SEARCH reads it itself. Matching is case-insensitive substring matching (RFC 3501 §6.4.4), which also
finds CJK words inside unsegmented text.
"""

from __future__ import annotations

from typing import Protocol

from dizimail.model.types import SearchDoc


class SearchIndex(Protocol):
    async def search(self, mailbox_id: int, field: str, term: str) -> set[int]:
        """UIDs of messages in the mailbox whose ``field`` contains ``term``.

        ``field`` is one of subject, from, to, cc, bcc, headers, body, or ``text`` (headers or
        body). Messages without an index document are not returned: see :meth:`unindexed`."""

    async def unindexed(self, mailbox_id: int) -> set[int]:
        """UIDs whose text is not in the index (the caller evaluates those itself)."""

    async def pending(self, limit: int) -> list[str]:
        """Blob ids that have messages but no document yet (the indexer's work list)."""

    async def add(self, documents: list[tuple[str, SearchDoc]]) -> None:
        """Index documents (blob id, text) in one transaction; already indexed blobs are skipped."""
