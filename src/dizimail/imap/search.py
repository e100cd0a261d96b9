"""SEARCH evaluation over the selected mailbox (RFC 3501 §6.4.4, RFC 7162 MODSEQ).

Flags, dates, sizes and sets are answered from the messages' rows, read a batch at a time
through the session's view; header and text keys read the messages (decoded with their
charsets, so a GB2312 message matches a UTF-8 query). The full-text index (DESIGN.md §3,
SQLite FTS5) will take over text keys.
"""

from __future__ import annotations

import datetime as dt
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from dizimail.codec.imap import searchkeys as sk
from dizimail.codec.imap.searchkeys import SearchKey
from dizimail.codec.mime.text import header_text
from dizimail.model.types import MessageEntry, SearchDoc
from dizimail.services.messages import search_doc

if TYPE_CHECKING:
    from dizimail.imap.base import SessionBase


class _Message:
    def __init__(self, session: SessionBase, uid: int) -> None:
        self.session, self.uid = session, uid
        self._raw: bytes | None = None
        self._headers: dict[str, list[str]] | None = None
        self._doc: SearchDoc | None = None

    async def raw(self) -> bytes:
        if self._raw is None:
            view = self.session.selected
            assert view is not None
            self._raw = await self.session.ctx.mailstore.read_message(view.entries[self.uid])
        return self._raw

    async def headers(self) -> dict[str, list[str]]:
        if self._headers is None:
            self._headers = header_text(await self.raw())
        return self._headers

    async def doc(self) -> SearchDoc:
        """The same text the index holds, for messages it lacks (one rule for both paths)."""
        if self._doc is None:
            self._doc = search_doc(await self.raw())
        return self._doc


INDEXED_HEADERS = {"subject", "from", "to", "cc", "bcc"}


def _leaves(key: SearchKey) -> list[SearchKey]:
    if isinstance(key, sk.Not):
        return _leaves(key.key)
    if isinstance(key, sk.Or):
        return _leaves(key.a) + _leaves(key.b)
    if isinstance(key, sk.And):
        return [leaf for k in key.keys for leaf in _leaves(k)]
    return [key]


async def evaluate_search(session: SessionBase, key: Any, charset: str | None) -> list[int]:
    """Text keys are answered by the SearchIndex, one query per key; the boolean tree and the
    cheap keys are evaluated on the session's view. Messages the index lacks are read."""
    view = session.selected
    assert view is not None
    index = session.ctx.mailstore.search_index
    hits: dict[int, set[int]] = {}
    unindexed: set[int] = set()
    text_leaves = [leaf for leaf in _leaves(key) if isinstance(leaf, (sk.Text, sk.Body))
                   or (isinstance(leaf, sk.Header) and leaf.field.lower() in INDEXED_HEADERS and leaf.value)]
    if text_leaves:
        unindexed = await index.unindexed(view.info.id)
        for leaf in text_leaves:
            field = "text" if isinstance(leaf, sk.Text) else "body" if isinstance(leaf, sk.Body) else \
                leaf.field.lower()
            hits[id(leaf)] = await index.search(view.info.id, field, leaf.value)
    result = []
    matched: list[MessageEntry] = []
    async for batch in view.rows(view.uids):  # the rows a batch at a time, as the view's window
        for entry in batch:
            uid = entry.uid
            if uid in view.pending_expunge:
                continue
            try:
                if await _match(session, key, _Message(session, uid), hits if uid not in unindexed else {}):
                    result.append(uid)
                    matched.append(entry)
            except OSError:  # expunged meanwhile
                continue
    view.set_window(matched)  # what the caller reads next (MODSEQ, SORT keys): the matches' rows
    return result


def _fold(text: str) -> str:
    return text.casefold()


async def _match(session: SessionBase, key: SearchKey, msg: _Message, hits: dict[int, set[int]]) -> bool:
    view = session.selected
    assert view is not None
    uid = msg.uid
    entry = view.entries[uid]
    if id(key) in hits:
        return uid in hits[id(key)]
    if isinstance(key, sk.All):
        return True
    if isinstance(key, sk.Flag):
        if key.name.lower() == "\\recent":
            has = uid in view.recent
        else:
            has = any(f.lower() == key.name.lower() for f in view.flags[uid])
        return has == key.present
    if isinstance(key, sk.Header):
        if key.field.lower() in INDEXED_HEADERS and key.value:
            doc = await msg.doc()
            text = {"subject": doc.subject, "from": doc.addr_from, "to": doc.addr_to, "cc": doc.addr_cc,
                    "bcc": doc.addr_bcc}[key.field.lower()]
            return _fold(key.value) in text
        values = (await msg.headers()).get(key.field.lower(), [])
        if key.value == "":
            return bool(values)
        return any(_fold(key.value) in _fold(v) for v in values)
    if isinstance(key, sk.Text):
        doc = await msg.doc()
        return _fold(key.value) in doc.headers or _fold(key.value) in doc.body
    if isinstance(key, sk.Body):
        return _fold(key.value) in (await msg.doc()).body
    if isinstance(key, sk.DateKey):
        day = await _day(key.which, entry.internal_date, msg)
        if day is None:
            return False
        return {"before": day < key.date, "on": day == key.date, "since": day >= key.date}[key.op]
    if isinstance(key, sk.Size):
        return entry.size > key.n if key.op == "larger" else entry.size < key.n
    if isinstance(key, sk.Seq):
        seq = view.seq_of(uid)
        return seq is not None and key.set.contains(seq, view.exists)
    if isinstance(key, sk.Uid):
        return key.set.contains(uid, view.uids[-1] if view.uids else 0)
    if isinstance(key, sk.Not):
        return not await _match(session, key.key, msg, hits)
    if isinstance(key, sk.Or):
        return await _match(session, key.a, msg, hits) or await _match(session, key.b, msg, hits)
    if isinstance(key, sk.And):
        for k in key.keys:
            if not await _match(session, k, msg, hits):
                return False
        return True
    if isinstance(key, sk.ModSeq):
        return view.modseqs.get(uid, 0) >= key.n
    if isinstance(key, sk.Older):
        return time.time() - entry.internal_date >= key.seconds
    if isinstance(key, sk.Younger):
        return time.time() - entry.internal_date <= key.seconds
    return False


async def _day(which: str, internal_date: float, msg: _Message) -> dt.date | None:
    if which == "internal":
        return dt.datetime.fromtimestamp(internal_date, dt.UTC).date()
    dates = (await msg.headers()).get("date", [])
    try:
        return parsedate_to_datetime(dates[0]).date() if dates else None
    except (TypeError, ValueError, IndexError):
        return None
