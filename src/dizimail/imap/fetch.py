"""FETCH responses (RFC 3501 §6.4.5, §7.4.2; RFC 3516 BINARY; RFC 7162 CONDSTORE)."""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dizimail.codec.imap.writer import imap_date, sequence_set_string
from dizimail.codec.mime.imap import binary, section
from dizimail.imap.base import CommandError
from dizimail.model.types import BlobMeta, MessageEntry

if TYPE_CHECKING:
    from dizimail.imap.base import SessionBase
    from dizimail.services.selected import RecentUids

BODY_ITEMS = {"BODY", "BINARY", "BINARY.SIZE", "RFC822", "RFC822.HEADER", "RFC822.TEXT"}
META_ITEMS = {"ENVELOPE", "BODYSTRUCTURE"}
SETS_SEEN = {"RFC822", "RFC822.TEXT"}
DRAIN_EVERY = 64 * 1024  # bytes of responses after which FETCH waits for the client to take them
KEPT_RESPONSES = 8 * 1024 * 1024  # bytes of rendered FETCH data kept (a list page's, shared by sessions)


class ResponseCache:
    """Rendered FETCH data of messages, for item lists that need no message bytes (a list page: UID,
    FLAGS, RFC822.SIZE, header fields), by what it depends on: the mailbox (id and UIDVALIDITY), the
    items, the UID, its MODSEQ (which moves with every flag change), whether it is \\Recent in the
    session and whether the session speaks IMAP4rev2 (no \\Recent). A page shown again is then a
    look-up per message instead of a rendering. LRU, KEPT_RESPONSES bytes."""

    def __init__(self, budget: int = KEPT_RESPONSES) -> None:
        self.budget = budget
        self.size = 0
        self._data: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._next = itertools.count(1)  # never reused: entries of a forgotten list stay unreachable

    def token(self) -> int:
        """A new number for an item list's entries (a FETCH plan keeps it while the list is known)."""
        return next(self._next)

    def get(self, key: tuple[Any, ...]) -> bytes | None:
        data = self._data.get(key)
        if data is not None:
            self._data.move_to_end(key)
        return data

    def put(self, key: tuple[Any, ...], data: bytes) -> None:
        if len(data) > self.budget // 64:
            return
        old = self._data.pop(key, None)
        if old is not None:
            self.size -= len(old)
        self._data[key] = data
        self.size += len(data)
        while self.size > self.budget:
            _, dropped = self._data.popitem(last=False)
            self.size -= len(dropped)


RESPONSES = ResponseCache()


def literal(data: bytes, binary_literal: bool = False) -> bytes:
    """A literal; an ordinary one may not carry NUL (RFC 3501 §4.3), so NULs become 0x80 there —
    BINARY[] (literal8) is the way to get such a part unchanged (RFC 3516)."""
    if not binary_literal and b"\0" in data:
        data = data.replace(b"\0", b"\x80")
    return (b"~" if binary_literal else b"") + b"{%d}\r\n" % len(data) + data


class FetchRenderer:
    def __init__(self, session: SessionBase) -> None:
        self.session = session
        self._labels: dict[int, tuple[Any, bytes]] = {}  # response names of the command's items, by id

    def label(self, item: Any) -> bytes:
        """The item's response name, computed once per command (items are hashed dataclasses: hashing
        one for every message of a page cost more than rendering it)."""
        known = self._labels.get(id(item))
        if known is None or known[0] is not item:
            known = self._labels[id(item)] = (item, str(item.response_name()).encode())
        return known[1]

    async def fetch(self, tag: str, c: Any) -> None:
        """The rows are read a batch at a time (services.selected), rendered and sent, so FETCH 1:*
        of a large mailbox streams in bounded memory."""
        s = self.session
        view = s.selected
        assert view is not None
        uids = s.resolve_uids(c.sequence, c.uid)
        plan = _plan(c.items, c.uid, c.changedsince is not None)
        if c.changedsince is not None or "MODSEQ" in plan.names:
            s.enable_condstore()
        if c.changedsince is not None and c.vanished:  # RFC 7162 §3.2.6: what in the set vanished since then
            if not (s.qresync and c.uid):
                raise CommandError("BAD", "VANISHED needs UID FETCH and ENABLE QRESYNC")
            changes = await s.ctx.mailstore.changes_since(view, c.changedsince)
            if c.sequence.uses_saved:  # RFC 5182 §2.1: an expunged message leaves "$", so none of it vanished
                gone = []
            else:
                gone = list(c.sequence.select(list(changes.expunged))) if changes.expunged else []
            if gone:
                s.untagged(f"VANISHED (EARLIER) {sequence_set_string(gone)}")
        items, needs_raw, needs_meta, head_items = plan.items, plan.needs_raw, plan.needs_meta, plan.head_items
        newly: set[int] = set()  # \Seen set by this FETCH: their FLAGS go into the response
        if not view.readonly and plan.sets_seen:
            changed, _failed = await s.ctx.mailstore.store(view, list(uids), "+", ("\\Seen",))
            if "FLAGS" not in plan.names:
                newly = {ch.uid for ch in changed}
        self._labels = {}
        # No message bytes needed (a list page): each message's data is looked up before it is rendered.
        token = plan.token
        box = (view.info.id, view.info.uidvalidity)
        store = s.ctx.mailstore
        missing = False
        found = 0
        unsent = 0  # bytes written since the last drain
        async for batch in view.rows(uids):
            # \Recent only counts when the batch reaches it (a list page of older mail: no call per message)
            recent: RecentUids | frozenset[int] = frozenset()
            if batch and view.recent.meets(batch[0].uid, batch[-1].uid):
                recent = view.recent
            new_keywords = view.keywords_update([e.flags for e in batch])
            if new_keywords is not None:  # set by another session since the client last heard
                s.flags_response(new_keywords, permanent=not view.readonly)
            out: list[bytes] = []  # sent a batch (or DRAIN_EVERY bytes) at a time, not a call per message
            for entry, seq in zip(batch, view.seqs_of(batch), strict=True):
                if not seq or (c.changedsince is not None and entry.modseq <= c.changedsince):
                    continue
                key = None
                if token is not None and entry.uid not in newly:
                    key = (box, token, entry.uid, entry.modseq, entry.uid in recent, s.rev2)
                data = RESPONSES.get(key) if key is not None else None
                if data is None:
                    try:
                        raw = await store.read_message(entry) if needs_raw else b""
                        meta = await store.blob_meta(entry) if needs_meta else None
                        heads = {}
                        for i in head_items:  # kept answers without an await: a list page asks for 50
                            sec = i.section
                            heads[id(i)] = store.known_header_fields(entry, sec.kind, sec.fields) or \
                                await store.header_fields(entry, sec.kind, sec.fields)
                        parts = self.render(entry, items, raw, meta, heads)
                    except OSError:  # expunged longer ago than the blob grace period: its bytes are gone
                        missing = True
                        continue
                    except _UnknownCte as exc:
                        raise CommandError("NO", "Unknown Content-Transfer-Encoding", "UNKNOWN-CTE") from exc
                    if entry.uid in newly:
                        flags = " ".join(s.visible_flags(view.flags_of(entry.uid, entry.flags)))
                        parts.append(f"FLAGS ({flags})".encode())
                    data = b" ".join(parts)
                    if key is not None:
                        RESPONSES.put(key, data)
                response = b"* %d FETCH (" % seq + data + b")\r\n"
                out.append(response)
                unsent += len(response)
                if unsent >= DRAIN_EVERY:
                    s.send(b"".join(out))
                    out.clear()
                    if not s.conn.has_pending():  # big responses: wait for the client now
                        await s.conn.drain()
                        unsent = 0
            s.send(b"".join(out))
            found += len(batch)
        view.set_window(())
        await s.sync(allow_expunge=c.uid)
        if missing or found < len(uids):
            s.tagged(tag, "NO", "Some of the requested messages no longer exist", "EXPUNGEISSUED")
        else:
            s.tagged(tag, "OK", "FETCH completed")

    async def render_message(self, entry: MessageEntry, items: list[Any]) -> list[bytes]:
        """The FETCH data items of one message (reading its bytes or cached structure if needed)."""
        needs_raw, needs_meta = _needs(items)
        store = self.session.ctx.mailstore
        raw = await store.read_message(entry) if needs_raw else b""
        meta = await store.blob_meta(entry) if needs_meta else None
        heads = {id(i): await store.header_fields(entry, i.section.kind, i.section.fields)
                 for i in items if _header_only(i)}
        return self.render(entry, items, raw, meta, heads)

    def render(self, entry: MessageEntry, items: list[Any], raw: bytes, meta: BlobMeta | None,
               heads: dict[int, bytes] | None = None) -> list[bytes]:
        """The FETCH data of one message; ``heads`` holds the header field sections already read
        (mailstore.header_fields), by ``id`` of their item, which then need no ``raw``."""
        s = self.session
        view = s.selected
        assert view is not None
        uid = entry.uid
        out: list[bytes] = []
        for item in items:  # the items of a message list first; names are upper-case (codec.imap)
            name = item.name
            if name == "UID":
                out.append(b"UID %d" % uid)
            elif name == "FLAGS":
                out.append(f"FLAGS ({' '.join(s.visible_flags(view.flags_of(uid, entry.flags)))})".encode())
            elif name == "RFC822.SIZE":
                out.append(b"RFC822.SIZE %d" % entry.size)
            elif name == "BODY" and item.section is not None:
                sec = item.section
                if heads is not None and id(item) in heads:
                    data = heads[id(item)]
                elif not sec.part and sec.kind in ("", "HEADER", "TEXT"):
                    data = _top_section(raw, sec.kind)
                else:
                    data = section(raw, sec.part, sec.kind, sec.fields) or b""
                out.append(self.label(item) + b" " + literal(_partial(data, item.partial)))
            elif name == "INTERNALDATE":
                out.append(f'INTERNALDATE "{imap_date(entry.internal_date)}"'.encode())
            elif name == "MODSEQ":
                out.append(b"MODSEQ (%d)" % entry.modseq)
            elif name == "ENVELOPE":
                assert meta is not None
                out.append(b"ENVELOPE " + meta.envelope)
            elif name == "BODYSTRUCTURE":
                assert meta is not None
                out.append(b"BODYSTRUCTURE " + meta.bodystructure)
            elif name == "BODY":
                assert meta is not None
                out.append(b"BODY " + meta.body)
            elif name == "RFC822":
                out.append(b"RFC822 " + literal(raw))
            elif name == "RFC822.HEADER":
                out.append(b"RFC822.HEADER " + literal(section(raw, (), "HEADER") or b""))
            elif name == "RFC822.TEXT":
                out.append(b"RFC822.TEXT " + literal(section(raw, (), "TEXT") or b""))
            elif name in ("BINARY", "BINARY.SIZE"):
                decoded = binary(raw, item.section.part if item.section else ())
                if decoded is None:
                    raise _UnknownCte()
                if name == "BINARY.SIZE":
                    out.append(self.label(item) + b" %d" % len(decoded))
                else:
                    out.append(self.label(item) + b" " + literal(_partial(decoded, item.partial),
                                                                               b"\0" in decoded))
        return out


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a FETCH item list asks for, worked out once per distinct list: a client sends the same
    list for every page of its message list."""

    items: list[Any]  # as asked, with UID (UID FETCH) and MODSEQ (CHANGEDSINCE) added (RFC 3501, RFC 7162)
    names: frozenset[str]  # of the items as asked
    sets_seen: bool  # a body section without PEEK, or RFC822 / RFC822.TEXT
    needs_raw: bool  # the message's bytes
    needs_meta: bool  # its ENVELOPE / BODYSTRUCTURE
    head_items: tuple[Any, ...]  # header fields of the whole message, answered from its header alone
    token: int | None  # the list's number in RESPONSES (None: answers need the bytes, never kept)


_PLANS: dict[tuple[Any, ...], _Plan] = {}


def _plan(asked: tuple[Any, ...] | list[Any], uid: bool, changedsince: bool) -> _Plan:
    key = (tuple(asked), uid, changedsince)
    plan = _PLANS.get(key)
    if plan is not None:
        return plan
    items = list(asked)
    names = frozenset(i.name.upper() for i in items)
    if uid and "UID" not in names:
        items.insert(0, _Item("UID"))
    if changedsince and "MODSEQ" not in names:  # RFC 7162 §3.1.4.1
        items.append(_Item("MODSEQ"))
    sets_seen = any((i.name.upper() in ("BODY", "BINARY") and i.section is not None and not i.peek)
                    or i.name.upper() in SETS_SEEN for i in items)
    needs_raw, needs_meta = _needs(items)
    plan = _Plan(items, names, sets_seen, needs_raw, needs_meta, tuple(i for i in items if _header_only(i)),
                 None if needs_raw else RESPONSES.token())
    if len(_PLANS) >= 256:  # hostile variety: start again (the tokens of forgotten lists are never reused)
        _PLANS.clear()
    _PLANS[key] = plan
    return plan


def _header_only(item: Any) -> bool:
    """BODY[HEADER.FIELDS (...)] (or .NOT) of the whole message: answered from its header alone."""
    return (item.name.upper() == "BODY" and item.section is not None and not item.section.part
            and item.section.kind in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"))


def _needs(items: list[Any]) -> tuple[bool, bool]:
    """Whether the items need the message's bytes, and its cached ENVELOPE/BODYSTRUCTURE."""
    names = {i.name.upper() for i in items}
    raw = bool(names & BODY_ITEMS - {"BODY"}) or any(i.name.upper() == "BODY" and i.section is not None
                                                     and not _header_only(i) for i in items)
    meta = bool(names & META_ITEMS) or any(i.name.upper() == "BODY" and i.section is None for i in items)
    return raw, meta


def _top_section(raw: bytes, kind: str) -> bytes:
    """BODY[], BODY[HEADER] and BODY[TEXT] of the whole message need no MIME parse (RFC 3501 §6.4.5)."""
    if not kind:
        return raw
    if raw.startswith(b"\r\n"):  # no header fields at all
        return b"\r\n" if kind == "HEADER" else raw[2:]
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return raw if kind == "HEADER" else b""
    return raw[: end + 4] if kind == "HEADER" else raw[end + 4:]


def _partial(data: bytes, partial: tuple[int, int] | None) -> bytes:
    if partial is None:
        return data
    origin, length = partial
    return data[origin:origin + length]


class _UnknownCte(Exception):
    pass


class _Item:
    def __init__(self, name: str) -> None:
        self.name = name
        self.section = None
        self.partial = None
        self.peek = False
