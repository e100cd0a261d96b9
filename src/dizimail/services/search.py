"""SEARCH, SORT and THREAD over a mailbox view (RFC 9051 §6.4.4, RFC 5256, RFC 5182, RFC 7162 §3.1.5).

Written once for IMAP, and for webmail and the REST API to call the same way: the caller hands in
a view (services.selected), a search key tree (codec.imap.searchkeys: values, not wire syntax) and
sort criteria, and gets UIDs or thread trees back; rendering them is the caller's business.

Every leaf of the tree is answered by the stores as a set of UIDs, never by reading messages one by
one: flags, sizes, dates and MODSEQs by the message index, text by the search index (trusted: a
hit is not re-verified), the sent date and SORT/THREAD keys by the keys stored with each blob at
ingest, sequence sets, \\Recent and ``$`` by the view. The boolean tree is then combined with set
operations. Messages the search index lacks (just delivered) and blobs without keys (stored before
keys existed) are given them first, off the event loop, and keep them. Stores read large mailboxes
in their read pool; combining, sorting and threading many messages runs in a thread.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from dizimail.codec.imap import searchkeys as sk
from dizimail.codec.imap.searchkeys import SearchKey
from dizimail.interfaces import BlobStore, MetaStore, SearchIndex
from dizimail.model.errors import InvalidInput
from dizimail.model.types import MessageFilter, SearchDoc, SortKeys
from dizimail.services.messages import search_doc, sort_keys
from dizimail.services.selected import SelectedMailbox
from dizimail.services.threads import ThreadNode, ordered_subject, references

T = TypeVar("T")
INDEXED_HEADERS = frozenset({"subject", "from", "to", "cc", "bcc"})  # fields with their own index column
MAX_LEAVES = 256  # distinct keys of one search that the stores answer (each a query over the mailbox)
INLINE = 2000  # messages handled on the event loop; more go to a thread
BATCH = 200  # blobs read per thread hop when giving them documents or keys
INDEX_LIMIT = 32 * 1024 * 1024  # bytes of a message read for its search document
HEADER_LIMIT = 1024 * 1024  # bytes of a message read for its sort keys (they are all header fields)
INDEX_BUDGET = 0.5  # seconds one indexer run may go on while a backlog is left and no mail arrives
THREAD_ALGORITHMS = {"ORDEREDSUBJECT": ordered_subject, "REFERENCES": references}


class SearchTooComplex(InvalidInput):
    def __init__(self, leaves: int) -> None:
        super().__init__("search_too_complex", f"{leaves} distinct search keys (at most {MAX_LEAVES})")


def _leaves(key: SearchKey) -> dict[SearchKey, None]:
    """The distinct leaves of the tree (keys are frozen values: ``ALL ALL ALL`` is one leaf)."""
    found: dict[SearchKey, None] = {}
    stack = [key]
    while stack:
        node = stack.pop()
        if isinstance(node, sk.Not):
            stack.append(node.key)
        elif isinstance(node, sk.Or):
            stack += (node.a, node.b)
        elif isinstance(node, sk.And):
            stack += node.keys
        else:
            found[node] = None
    return found


def _day_start(day: dt.date) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


def row_filter(key: SearchKey, now: float) -> MessageFilter | None:
    """The stored-field condition of a leaf, or None for leaves answered elsewhere. Internal dates
    compare by their UTC day, sent dates by the day the Date field names (RFC 9051 §6.4.4)."""
    if isinstance(key, sk.Flag) and key.name.lower() != "\\recent":
        return MessageFilter(flag=key.name, flag_set=key.present)
    if isinstance(key, sk.Size):
        return MessageFilter(larger=key.n) if key.op == "larger" else MessageFilter(smaller=key.n)
    if isinstance(key, sk.ModSeq):
        return MessageFilter(modseq_from=key.n)
    if isinstance(key, sk.Older):
        return MessageFilter(internal_until=now - key.seconds)
    if isinstance(key, sk.Younger):
        return MessageFilter(internal_from=now - key.seconds)
    if isinstance(key, sk.DateKey):
        if key.which == "internal":
            start, end = _day_start(key.date), _day_start(key.date + dt.timedelta(days=1))
            return {"before": MessageFilter(internal_until=start), "since": MessageFilter(internal_from=start),
                    "on": MessageFilter(internal_from=start, internal_until=end)}[key.op]
        day = key.date.toordinal()
        return {"before": MessageFilter(sent_until_day=day), "since": MessageFilter(sent_from_day=day),
                "on": MessageFilter(sent_from_day=day, sent_until_day=day + 1)}[key.op]
    return None


def _is_text(key: SearchKey) -> bool:
    return isinstance(key, (sk.Header, sk.Text, sk.Body))


def combine(key: SearchKey, leaf: dict[SearchKey, set[int]], universe: set[int]) -> set[int]:
    """The UIDs matching ``key``, given each leaf's UIDs. NOTs inside an AND are subtracted rather
    than complemented, and an AND starts from its smallest member, so the work is about the size
    of the sets involved, not the number of keys times the mailbox. Depth is bounded by the parser."""
    if isinstance(key, sk.And):
        positive: list[set[int]] = []
        negative: list[set[int]] = []
        for k in dict.fromkeys(key.keys):
            if isinstance(k, sk.Not):
                negative.append(combine(k.key, leaf, universe))
            else:
                positive.append(combine(k, leaf, universe))
        positive.sort(key=len)
        result = set(positive[0]) if positive else set(universe)
        for other in positive[1:]:
            if not result:
                break
            result &= other
        for other in negative:
            result -= other
        return result
    if isinstance(key, sk.Or):
        return combine(key.a, leaf, universe) | combine(key.b, leaf, universe)
    if isinstance(key, sk.Not):
        return universe - combine(key.key, leaf, universe)
    return leaf[key]


async def _cpu(size: int, fn: Callable[[], T]) -> T:
    """``fn`` here when its input is small, else in a thread (nothing heavy on the event loop)."""
    return fn() if size <= INLINE else await asyncio.to_thread(fn)



class IndexPacer:
    """When the node's indexer runs, and for how long (DESIGN.md §3). A search document costs about as
    much CPU as receiving its message (issue #9: SMTP to mailbox 252-332 msg/s with the indexer taking a
    batch a second during a 5,000-message burst, 378-476 without), so while mail arrives faster than
    ``burst_rate`` a second the documents wait and reception has the CPU. The backlog is indexed at the
    first quieter interval; a burst that lasts ``max_deferred`` intervals gets one batch an interval, so
    a backlog cannot grow without end. Meanwhile a search gives the messages it needs their documents
    itself (MessageSearch.search)."""

    def __init__(self, received: int, interval: float, burst_rate: float = 20.0, max_deferred: int = 30) -> None:
        self.seen = received
        self.burst = burst_rate * interval
        self.max_deferred = max_deferred
        self.deferred = 0

    def budget(self, received: int) -> float | None:
        """Given the node's count of received messages now, this run's budget: None (skip), 0.0 (one
        batch) or INDEX_BUDGET (the backlog, for up to that many seconds)."""
        arrived, self.seen = received - self.seen, received
        if arrived <= self.burst:
            self.deferred = 0
            return INDEX_BUDGET
        self.deferred += 1
        return 0.0 if self.deferred > self.max_deferred else None

class MessageSearch:
    def __init__(self, meta: MetaStore, index: SearchIndex, blobs: BlobStore) -> None:
        self.meta = meta
        self.index = index
        self.blobs = blobs

    # --- SEARCH ----------------------------------------------------------------------------
    async def search(self, view: SelectedMailbox, key: SearchKey, saved: Sequence[int] = ()) -> list[int]:
        """UIDs of the view's messages matching ``key``, ascending (RFC 9051 §6.4.4). ``saved`` is the
        result ``$`` names (RFC 5182 §2.1: empty before any SEARCH RETURN (SAVE)). Messages whose
        expunge the view has not yet announced are left out. Raises SearchTooComplex."""
        pending = view.pending_expunge
        universe = list(view.uids) if not pending else [u for u in view.uids if u not in pending]
        if isinstance(key, sk.All) or not universe:
            return universe if isinstance(key, sk.All) else []
        leaves = _leaves(key)
        stored = [leaf for leaf in leaves if _is_text(leaf) or row_filter(leaf, 0.0) is not None]
        if len(stored) > MAX_LEAVES:
            raise SearchTooComplex(len(stored))
        mailbox = view.info.id
        if any(_is_text(leaf) for leaf in stored):
            await self.index_mailbox(mailbox)
        if any(isinstance(leaf, sk.DateKey) and leaf.which == "sent" for leaf in stored):
            await self.give_keys(mailbox)
        members = set(universe)
        now = time.time()
        found = {leaf: await self._leaf(view, leaf, members, saved, now) for leaf in leaves}

        def evaluate() -> list[int]:
            matched = combine(key, found, members)
            return [u for u in universe if u in matched]
        return await _cpu(len(universe), evaluate)

    async def _leaf(self, view: SelectedMailbox, key: SearchKey, members: set[int], saved: Sequence[int],
                    now: float) -> set[int]:
        mailbox = view.info.id
        if isinstance(key, sk.All):
            return members
        if isinstance(key, (sk.Seq, sk.Uid)):
            if key.set.uses_saved:  # "$" (RFC 5182 §2.1)
                return set(saved)
            if isinstance(key, sk.Seq):
                return set(view.uids_in(key.set.normalized(view.exists), by_uid=False))
            return set(view.uids_in(key.set.normalized(view.uids[-1]), by_uid=True))
        if isinstance(key, sk.Flag) and key.name.lower() == "\\recent":
            recent = {u for lo, hi in view.recent.ranges for u in view.uids_in([(lo, hi - 1)], by_uid=True)}
            return recent if key.present else members - recent
        if isinstance(key, sk.Header):
            field = key.field.lower()
            if field in INDEXED_HEADERS and key.value:
                return await self.index.search(mailbox, field, key.value)
            return await self.index.search_header(mailbox, field, key.value)
        if isinstance(key, (sk.Text, sk.Body)):
            if not key.value:  # every message contains the empty string
                return members
            return await self.index.search(mailbox, "text" if isinstance(key, sk.Text) else "body", key.value)
        condition = row_filter(key, now)
        assert condition is not None, key
        return await self.meta.filter_uids(mailbox, condition)

    # --- SORT and THREAD (RFC 5256) ----------------------------------------------------------
    async def sort(self, view: SelectedMailbox, criteria: Sequence[tuple[bool, str]], uids: Sequence[int]) -> list[int]:
        """``uids`` in the order of ``criteria`` (``(reverse, key)``, key one of ARRIVAL, CC, DATE, FROM,
        SIZE, SUBJECT, TO, DISPLAYFROM, DISPLAYTO); ties in UID order (RFC 5256 §3). One ordered read
        of the stored keys; nothing is read from the messages."""
        if not uids:
            return []
        order = [(name.lower(), reverse) for reverse, name in criteria]
        if any(name not in ("arrival", "size") for name, _ in order):
            await self.give_keys(view.info.id)
        ordered = await self.meta.sorted_uids(view.info.id, order)

        def pick() -> list[int]:
            wanted = set(uids)
            return [u for u in ordered if u in wanted]
        return await _cpu(len(ordered), pick)

    async def thread(self, view: SelectedMailbox, algorithm: str, uids: Sequence[int]) -> list[ThreadNode]:
        """THREAD=ORDEREDSUBJECT or THREAD=REFERENCES (RFC 5256 §3) of ``uids``; thread trees in order,
        nodes carry UIDs (None for a dummy parent). Raises KeyError for another algorithm."""
        build = THREAD_ALGORITHMS[algorithm.upper()]
        if not uids:
            return []
        await self.give_keys(view.info.id)
        rows = await self.meta.message_keys(view.info.id)

        def run() -> list[ThreadNode]:
            wanted = set(uids)
            return build([r for r in rows if r.uid in wanted])
        return await _cpu(len(rows), run)

    # --- what the stores lack -----------------------------------------------------------------
    async def give_keys(self, mailbox_id: int) -> None:
        """Compute and store the sort keys of the mailbox's blobs that have none (stored before keys
        existed, or too large to be described at ingest), reading only their header, in a thread."""
        missing = await self.meta.blobs_without_keys(mailbox_id)
        for start in range(0, len(missing), BATCH):
            batch = missing[start:start + BATCH]
            await self.meta.set_sort_keys(await asyncio.to_thread(self._read_keys, batch))

    def _read_keys(self, blob_ids: list[str]) -> list[tuple[str, SortKeys]]:
        return self._read_each(blob_ids, HEADER_LIMIT, sort_keys)

    def _read_each(self, blob_ids: list[str], limit: int, compute: Callable[[bytes], T]) -> list[tuple[str, T]]:
        """``compute`` over the first ``limit`` bytes of each blob (in a thread: file reads and parsing)."""
        out = []
        for blob_id in blob_ids:
            try:
                with self.blobs.open(blob_id) as handle:
                    data = handle.read(limit)
            except OSError:  # swept meanwhile: its messages are gone
                continue
            out.append((blob_id, compute(data)))
        return out

    async def index_mailbox(self, mailbox_id: int) -> None:
        """Give every message of the mailbox its search document now (the indexer would soon), so
        that the index alone answers: no message is read at search time."""
        missing = await self.index.unindexed(mailbox_id)
        for start in range(0, len(missing), BATCH):
            await self.index.add(await asyncio.to_thread(self._read_docs, missing[start:start + BATCH]))

    def _read_docs(self, blob_ids: list[str]) -> list[tuple[str, SearchDoc]]:
        return self._read_each(blob_ids, INDEX_LIMIT, search_doc)

    async def index_pending(self, limit: int = BATCH, budget: float = INDEX_BUDGET) -> int:
        """Add search documents for messages committed since the last run, a batch at a time for
        up to ``budget`` seconds while a backlog is left (0: one batch); returns how many."""
        done = 0
        started = time.monotonic()
        while True:
            blob_ids = await self.index.pending(limit)
            if not blob_ids:
                return done
            docs = await asyncio.to_thread(self._read_docs, blob_ids)
            await self.index.add(docs)
            done += len(docs)
            if len(blob_ids) < limit or time.monotonic() - started >= budget:
                return done
