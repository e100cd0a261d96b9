"""Mailbox semantics written once for POP3 now, IMAP and webmail later (CONVENTIONS habit 7).

POP3's maildrop is the INBOX: a snapshot of its index rows taken at login,
messages read as the per-recipient prefix followed by the shared blob, and
deletions applied in one transaction at QUIT (RFC 1939 §6 UPDATE state).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from dizimail.interfaces import BlobStore, MetaStore, SearchIndex
from dizimail.model.errors import MailError, NotFound, PreconditionFailed, QuotaExceeded, TemporaryFailure
from dizimail.model.types import (
    Account,
    BlobMeta,
    FlagChange,
    MailboxChanges,
    MailboxInfo,
    MailboxStatus,
    MessageEntry,
    SearchDoc,
)
from dizimail.services.folders import canonical_name
from dizimail.services.messages import describe_blob, search_doc
from dizimail.services.notify import Notifier
from dizimail.services.policy.quota import QuotaRule
from dizimail.services.selected import SelectedMailbox, normalize_flags

CHUNK = 256 * 1024
SMALL = 128 * 1024
INDEX_LIMIT = 32 * 1024 * 1024  # bytes of a message read for its search document
META_CACHE = 8192  # ENVELOPE/BODYSTRUCTURE of this many blobs kept in memory (they never change)


class MaildropBusy(MailError):
    def __init__(self) -> None:
        super().__init__(True, 0, "", "maildrop_in_use", "another POP3 session holds this maildrop")


@dataclass
class Maildrop:
    account: Account
    mailbox: MailboxInfo
    messages: list[MessageEntry]

    def uidl(self, entry: MessageEntry) -> str:
        """Stable across sessions and restarts: UIDVALIDITY and UID never change for a message."""
        return f"{self.mailbox.uidvalidity}.{entry.uid}"


class Mailstore:
    def __init__(self, meta: MetaStore, blobs: BlobStore, notifier: Notifier, search_index: SearchIndex,
                 quota: QuotaRule | None = None) -> None:
        self.meta = meta
        self.quota = quota or QuotaRule()
        self.blobs = blobs
        self.notifier = notifier
        self.search_index = search_index
        self._locked: set[int] = set()
        self._meta_cache: dict[str, BlobMeta] = {}  # insertion-ordered: the oldest go first

    # --- IMAP and webmail ------------------------------------------------------
    async def select(self, account: Account, name: str, readonly: bool) -> SelectedMailbox:
        """Open a session's view of a mailbox (RFC 3501 §6.3.1 SELECT / §6.3.2 EXAMINE)."""
        box = await self.meta.get_mailbox(account.id, canonical_name(name))
        if box is None:
            raise NotFound("unknown_mailbox", name)
        view = SelectedMailbox(self.meta, box, readonly)
        await view.open()
        return view

    async def status(self, account: Account, name: str) -> tuple[MailboxInfo, MailboxStatus]:
        box = await self.meta.get_mailbox(account.id, canonical_name(name))
        if box is None:
            raise NotFound("unknown_mailbox", name)
        return box, await self.meta.mailbox_status(box.id)

    async def changes_since(self, view: SelectedMailbox, modseq: int) -> MailboxChanges:
        """Everything that changed in the selected mailbox since a client's MODSEQ, expunges
        included (RFC 7162 QRESYNC, FETCH VANISHED)."""
        return await self.meta.mailbox_changes(view.info.id, modseq, 1 << 62)

    async def store(self, view: SelectedMailbox, uids: list[int], mode: str, flags: tuple[str, ...],
                    unchangedsince: int | None = None) -> tuple[list[FlagChange], list[int]]:
        """Change flags; every other session on the mailbox hears of it (RFC 3501 §6.4.6)."""
        changed, failed = await self.meta.store_flags(view.info.id, uids, mode, normalize_flags(flags),
                                                      unchangedsince)
        for change in changed:
            view.note_flags(change.uid, change.flags, change.modseq)
        if changed:
            self.notifier.changed([view.info.id])
        return changed, failed

    async def expunge_uids(self, view: SelectedMailbox, uids: list[int]) -> None:
        if uids:
            await self.meta.expunge(view.info.id, uids)
            self.notifier.changed([view.info.id])

    async def copy(self, account: Account, view: SelectedMailbox, uids: list[int], target: str,
                   move: bool) -> tuple[MailboxInfo, list[tuple[int, int]]]:
        """COPY (RFC 3501 §6.4.7) or MOVE (RFC 6851); raises NotFound for a missing target."""
        box = await self.meta.get_mailbox(account.id, canonical_name(target))
        if box is None:
            raise NotFound("unknown_mailbox", target)
        current = await self.meta.get_account(account.address) or account  # the quota as it is now
        try:
            pairs = await self.meta.copy_messages(view.info.id, uids, box.id, move=move,
                                                  limit=self.quota.limit(current))
        except PreconditionFailed as exc:
            raise QuotaExceeded(f"{account.address}: {exc.detail}") from exc
        self.notifier.changed([box.id] + ([view.info.id] if move else []))
        return box, pairs

    async def open_maildrop(self, account: Account) -> Maildrop:
        """Lock and snapshot the INBOX (RFC 1939 §8: exclusive access); raises MaildropBusy."""
        if account.id in self._locked:
            raise MaildropBusy()
        self._locked.add(account.id)
        try:
            box = await self.meta.get_mailbox(account.id, "INBOX")
            if box is None:
                raise TemporaryFailure(f"INBOX missing for {account.address}")
            return Maildrop(account, box, await self.meta.list_messages(box.id))
        except BaseException:
            self._locked.discard(account.id)
            raise

    def release(self, drop: Maildrop) -> None:
        self._locked.discard(drop.account.id)

    async def read_chunks(self, entry: MessageEntry) -> AsyncIterator[bytes]:
        """The message as stored: prefix (trace headers) then the blob, in chunks."""
        yield entry.prefix
        if entry.size <= SMALL:  # page-cache reads of small files cost less than a thread hop
            with self.blobs.open(entry.blob_id) as small:
                yield small.read()
            return
        handle = await asyncio.to_thread(self.blobs.open, entry.blob_id)
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk
        finally:
            handle.close()

    async def read_message(self, entry: MessageEntry) -> bytes:
        return b"".join([c async for c in self.read_chunks(entry)])

    async def index_pending(self, limit: int = 200) -> int:
        """Add search documents for messages committed since the last run; returns how many."""
        blob_ids = await self.search_index.pending(limit)
        if not blob_ids:
            return 0

        def read_docs() -> list[tuple[str, SearchDoc]]:
            docs = []
            for blob_id in blob_ids:
                try:
                    with self.blobs.open(blob_id) as handle:
                        docs.append((blob_id, search_doc(handle.read(INDEX_LIMIT))))
                except OSError:  # swept meanwhile
                    continue
            return docs
        docs = await asyncio.to_thread(read_docs)
        await self.search_index.add(docs)
        return len(docs)

    async def sweep(self, grace: float) -> int:
        """Remove message files that nothing has referenced for ``grace`` seconds."""
        removed = 0
        while (n := await self.meta.sweep_blobs(grace)) > 0:
            removed += n
            await asyncio.to_thread(self.blobs.purge)  # the unlinks, outside the writer's transaction
        return removed

    async def blob_meta(self, entry: MessageEntry) -> BlobMeta:
        """Cached ENVELOPE/BODYSTRUCTURE; computed (and stored) now for blobs that lack them.
        A blob's content never changes, so neither does its description: the most recently
        used ones are also kept here."""
        cache = self._meta_cache
        meta = cache.pop(entry.blob_id, None)
        if meta is None:
            meta = await self.meta.blob_meta(entry.blob_id)
            if meta is None:
                def compute() -> BlobMeta:
                    with self.blobs.open(entry.blob_id) as handle:
                        return describe_blob(handle.read())
                meta = await asyncio.to_thread(compute)
                await self.meta.set_blob_meta(entry.blob_id, meta)
            if len(cache) >= META_CACHE:
                del cache[next(iter(cache))]
        cache[entry.blob_id] = meta
        return meta

    async def expunge(self, drop: Maildrop, uids: list[int]) -> int:
        if not uids:
            return 0
        return await self.meta.expunge(drop.mailbox.id, uids)
