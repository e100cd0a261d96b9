"""SearchIndex: full text of headers and text parts, Chinese-aware (DESIGN.md §3).

Documents are added by the node's indexer shortly after a message is committed (one per blob,
off the SMTP critical path), or by a search that finds its mailbox not fully indexed
(:meth:`unindexed`). Matching is case-insensitive substring matching (RFC 9051 §6.4.4: the
term and the text are case-folded), which also finds CJK words inside unsegmented text. A search
of a large mailbox runs off the event loop.
"""

from __future__ import annotations

from typing import Protocol

from dizimail.model.types import SearchDoc


class SearchIndex(Protocol):
    async def search(self, mailbox_id: int, field: str, term: str) -> set[int]:
        """UIDs of messages in the mailbox whose ``field`` contains ``term``.

        ``field`` is one of subject, from, to, cc, bcc (decoded values, and for addresses also
        each parsed ``name <address>``), headers (every field), body (decoded text parts), or
        ``text`` (headers or body). An empty term matches every message with a document.
        Messages without a document are not returned: see :meth:`unindexed`."""

    async def search_header(self, mailbox_id: int, name: str, term: str) -> set[int]:
        """UIDs of messages having a header field ``name`` whose decoded value contains ``term``
        (an empty term: having the field at all; RFC 9051 §6.4.4 HEADER). The message's own
        trace fields (Return-Path, Delivered-To: the per-recipient prefix) count as fields."""

    async def unindexed(self, mailbox_id: int) -> list[str]:
        """Blob ids of the mailbox's messages that have no document yet (the caller adds them)."""

    async def pending(self, limit: int) -> list[str]:
        """Blob ids that have messages but no document yet (the indexer's work list)."""

    async def add(self, documents: list[tuple[str, SearchDoc]]) -> None:
        """Index documents (blob id, text) in one transaction; already indexed blobs are skipped."""
