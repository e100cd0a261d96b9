"""Mailbox semantics written once for POP3, IMAP and webmail (CONVENTIONS habit 7).

POP3's maildrop is the INBOX: a snapshot of its index rows taken at login,
messages read as the per-recipient prefix followed by the shared blob, and
deletions applied in one transaction at QUIT (RFC 1939 §6 UPDATE state).
IMAP and webmail open a view of a mailbox (services.selected) and search, sort
and thread it through :class:`~dizimail.services.search.MessageSearch`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from dizimail.codec.imap.searchkeys import SearchKey
from dizimail.codec.mime.imap import section
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
)
from dizimail.services.folders import canonical_name
from dizimail.services.messages import describe_blob
from dizimail.services.notify import Notifier
from dizimail.services.offload import opened
from dizimail.services.policy.quota import QuotaRule
from dizimail.services.search import INDEX_BUDGET, MessageSearch
from dizimail.services.selected import SelectedMailbox, normalize_flags
from dizimail.services.threads import ThreadNode

CHUNK = 256 * 1024
SMALL = 128 * 1024
META_CACHE = 8192  # ENVELOPE/BODYSTRUCTURE of this many blobs kept in memory (they never change)
HEADER_CACHE = 8 * 1024 * 1024  # bytes of header field answers kept in memory (they never change either)
HEAD_READ = 16 * 1024  # bytes read first for a header (the rest only if the header goes on)


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
        # told of every COPY/MOVE that touches a special-use mailbox: (the account's address, source's and
        # target's special use, the blobs copied); the Junk learner of the content filter listens
        self.on_copy: Callable[[str, str | None, str | None, list[str]], None] | None = None
        self.blobs = blobs
        self.notifier = notifier
        self.searching = MessageSearch(meta, search_index, blobs)
        self._locked: set[int] = set()
        self._meta_cache: dict[str, BlobMeta] = {}  # insertion-ordered: the oldest go first
        self._heads: dict[tuple[str, bytes, str, tuple[str, ...]], bytes] = {}  # header_fields answers, LRU
        self._heads_size = 0

    # --- IMAP and webmail ------------------------------------------------------
    async def select(self, account: Account, name: str, readonly: bool) -> SelectedMailbox:
        """Open a session's view of a mailbox (RFC 3501 §6.3.1 SELECT / §6.3.2 EXAMINE)."""
        box = await self.meta.get_mailbox(account.id, canonical_name(name))
        if box is None:
            raise NotFound("unknown_mailbox", name)
        view = SelectedMailbox(self.meta, box, readonly)
        await view.open()
        return view

    async def status(self, account: Account, name: str,
                     selected: SelectedMailbox | None = None) -> tuple[MailboxInfo, MailboxStatus]:
        """A mailbox's STATUS counters; the session's ``selected`` mailbox answers as the session last
        synchronised with it (:meth:`SelectedMailbox.status`), every other from the store now."""
        canonical = canonical_name(name)
        if selected is not None and selected.info.name == canonical and (known := selected.status()) is not None:
            return selected.info, known
        found = await self.meta.find_status(account.id, canonical)
        if found is None:
            raise NotFound("unknown_mailbox", name)
        return found

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
        if self.on_copy is not None and (box.special_use or view.info.special_use):
            # ``load`` answers with the view's window, which is the whole mailbox in a view that keeps all
            # its rows: only the copied messages are passed on.
            entries = await view.load([src for src, _dst in pairs])
            self.on_copy(account.address, view.info.special_use, box.special_use,
                         [entries[src].blob_id for src, _dst in pairs if src in entries])
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
        handle = await opened(self.blobs.open, entry.blob_id)
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk
        finally:
            handle.close()

    async def read_message(self, entry: MessageEntry) -> bytes:
        if entry.size <= SMALL:  # the common case, without the chunk iterator
            with self.blobs.open(entry.blob_id) as small:
                return entry.prefix + small.read()
        return b"".join([c async for c in self.read_chunks(entry)])

    def known_header_fields(self, entry: MessageEntry, kind: str, fields: tuple[str, ...]) -> bytes | None:
        """The kept answer of :meth:`header_fields`, if there is one (no read, no await)."""
        key = (entry.blob_id, entry.prefix, kind, fields)
        data = self._heads.pop(key, None)
        if data is not None:
            self._heads[key] = data  # the most recently used go last
        return data

    async def header_fields(self, entry: MessageEntry, kind: str, fields: tuple[str, ...]) -> bytes:
        """BODY[HEADER.FIELDS (...)] or BODY[HEADER.FIELDS.NOT (...)] of the whole message (RFC 3501
        §6.4.5), reading only its header. The answers are kept (LRU, HEADER_CACHE bytes): a message
        never changes, and clients list the same messages again and again (a webmail's page of the
        message list asks for the same fields of the same 50 messages at every visit)."""
        data = self.known_header_fields(entry, kind, fields)
        if data is None:
            data = section(await self._read_head(entry), (), kind, fields) or b"\r\n"
            heads = self._heads
            heads[(entry.blob_id, entry.prefix, kind, fields)] = data
            self._heads_size += len(data)
            while self._heads_size > HEADER_CACHE and heads:
                self._heads_size -= len(heads.pop(next(iter(heads))))
        return data

    async def _read_head(self, entry: MessageEntry) -> bytes:
        """The prefix and enough of the blob to hold its whole header section."""
        with self.blobs.open(entry.blob_id) as handle:
            data = handle.read(HEAD_READ)
            if len(data) == HEAD_READ and b"\n\r\n" not in data and b"\n\n" not in data:  # a long header
                data += await asyncio.to_thread(handle.read)
        return entry.prefix + data

    async def index_pending(self, budget: float = INDEX_BUDGET) -> int:
        """Add search documents for messages committed since the last run, for up to ``budget`` seconds
        (0: one batch); returns how many. The node's indexer asks with IndexPacer's budget."""
        return await self.searching.index_pending(budget=budget)

    async def search(self, view: SelectedMailbox, key: SearchKey, saved: Sequence[int] = ()) -> list[int]:
        """SEARCH (RFC 9051 §6.4.4): see MessageSearch.search."""
        return await self.searching.search(view, key, saved)

    async def sort(self, view: SelectedMailbox, criteria: Sequence[tuple[bool, str]], uids: Sequence[int]) -> list[int]:
        """SORT (RFC 5256 §3): see MessageSearch.sort."""
        return await self.searching.sort(view, criteria, uids)

    async def thread(self, view: SelectedMailbox, algorithm: str, uids: Sequence[int]) -> list[ThreadNode]:
        """THREAD (RFC 5256 §3): see MessageSearch.thread."""
        return await self.searching.thread(view, algorithm, uids)

    async def read_blob(self, blob_id: str, limit: int = 32 * 1024 * 1024) -> bytes:
        """A stored message's bytes (at most ``limit``), read in a worker thread."""
        def read() -> bytes:
            with self.blobs.open(blob_id) as handle:
                return handle.read(limit)
        return await asyncio.to_thread(read)

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
