"""Message-set commands: FETCH, STORE, COPY, MOVE, UID EXPUNGE (RFC 9051 §6.4.3-9).

FETCH attributes follow RFC 9051 §6.4.5 with the RFC 3501 RFC822.* items,
BINARY (RFC 3516 §4.2), CHANGEDSINCE / VANISHED (RFC 7162 §3.1.4, §3.2.6),
EMAILID / THREADID (RFC 8474), SAVEDATE (RFC 8514) and PREVIEW (RFC 8970);
STORE adds UNCHANGEDSINCE (RFC 7162 §3.1.3).
"""

from __future__ import annotations

import re

from dizimail.codec.imap.commands import Copy, Expunge, Fetch, Move, Store
from dizimail.codec.imap.reader import ParseError, Reader
from dizimail.codec.imap.types import SIMPLE_FETCH_ITEMS, BodySection, FetchItem

MAX_PART_DEPTH = 64  # section-part numbers; deeper MIME nesting is refused anyway by the store

_ITEM_NAME = re.compile(rb"[A-Za-z0-9.]+")
_PART = re.compile(rb"[1-9][0-9]{0,9}(?:\.[1-9][0-9]{0,9})*")
_SECTION_TEXT = re.compile(rb"[A-Za-z.]+")
_STORE_ATT = re.compile(rb"[+-]?[A-Za-z.]+")
_SECTION_KINDS = frozenset({"HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"})
_SECTIONED = frozenset({"BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE"})

_FAST = (FetchItem("FLAGS"), FetchItem("INTERNALDATE"), FetchItem("RFC822.SIZE"))
MACROS: dict[str, tuple[FetchItem, ...]] = {  # RFC 3501 §6.4.5
    "FAST": _FAST,
    "ALL": (*_FAST, FetchItem("ENVELOPE")),
    "FULL": (*_FAST, FetchItem("ENVELOPE"), FetchItem("BODY")),
}


def section(r: Reader, *, binary: bool) -> BodySection:
    """``"[" [section-spec] "]"`` (RFC 9051 §9); ``section-binary`` takes part numbers only."""
    r.expect(b"[", "'['")
    if r.accept(b"]"):
        return BodySection()
    raw = r.try_match(_PART)
    part = tuple(int(n) for n in raw.split(b".")) if raw else ()
    if len(part) > MAX_PART_DEPTH:
        raise ParseError("section part nested too deeply")
    if any(n >= 2**32 for n in part):
        raise ParseError("section part out of range")
    kind = ""
    if not binary and (not part or r.accept(b".")):
        kind = r.match(_SECTION_TEXT, "section text").decode("ascii").upper()
        if kind not in _SECTION_KINDS or (kind == "MIME" and not part):
            raise ParseError(f"invalid section {kind[:40]}")
    fields: tuple[str, ...] = ()
    if kind.startswith("HEADER.FIELDS"):
        r.sp("header field list")
        fields = tuple(r.items(r.header_field, "header field list"))
    r.expect(b"]", "']' after section")
    return BodySection(part, kind, fields)


def fetch_att(r: Reader) -> FetchItem:
    """One ``fetch-att`` (RFC 9051 §6.4.5, RFC 3516 §4.2)."""
    name = r.match(_ITEM_NAME, "fetch attribute").decode("ascii").upper()
    if name in _SECTIONED and r.peek() == 0x5B:  # "["
        peek = name.endswith(".PEEK")
        base = name.removesuffix(".PEEK")
        sect = section(r, binary=base != "BODY")
        partial = None
        if base != "BINARY.SIZE" and r.accept(b"<"):
            origin = r.number("partial origin", bits=63)
            r.expect(b".", "'.' in partial")
            partial = (origin, r.number("partial length", nonzero=True, bits=63))
            r.expect(b">", "'>' after partial")
        return FetchItem(base, sect, partial, peek)
    if name in SIMPLE_FETCH_ITEMS:
        return FetchItem(name)
    raise ParseError(f"unknown fetch attribute {name[:40]}")


def _fetch_items(r: Reader) -> tuple[FetchItem, ...]:
    if r.peek() == 0x28:  # "("
        return tuple(r.items(lambda: fetch_att(r), "fetch attribute"))
    start = r.pos
    name = (r.try_match(_ITEM_NAME) or b"").upper().decode("ascii")
    if name in MACROS:
        return MACROS[name]
    r.pos = start
    return (fetch_att(r),)


def _modifier(r: Reader, allowed: tuple[str, ...]) -> tuple[str, int | None]:
    """CHANGEDSINCE / UNCHANGEDSINCE take a mod-sequence (RFC 7162 §3.1.3-4), VANISHED nothing (§3.2.6)."""
    name = r.keyword("modifier")
    if name not in allowed:
        raise ParseError(f"invalid modifier {name[:40]}")
    if name == "VANISHED":
        return name, None
    r.sp("mod-sequence")
    return name, r.number("mod-sequence", bits=63)


# The parsed tail of recent FETCH commands (attributes and modifiers: immutable values), by its
# bytes and the UID prefix: a client asks for the same attributes page after page, and parsing a list such as
# Roundcube's cost a sixth of a 50-message FETCH. Bounded by entries and by the size of a tail.
_TAILS: dict[tuple[bool, bytes], tuple[tuple[FetchItem, ...], int | None, bool]] = {}
_TAILS_MAX = 256
_TAIL_MAX = 1024


def parse_fetch(r: Reader, uid: bool) -> Fetch:
    """``[UID] FETCH set items [(modifiers)]`` (RFC 9051 §6.4.5, RFC 7162 §3.1.4.1, §3.2.6)."""
    r.sp("sequence set")
    seq = r.sequence_set()
    r.sp("fetch attributes")
    rest = r.rest(_TAIL_MAX)
    tail = None if rest is None else (uid, rest)  # UID matters: VANISHED is for UID FETCH only
    known = _TAILS.get(tail) if tail is not None else None
    if known is not None:
        r.pos = len(r.data)
        items, changedsince, vanished = known
    else:
        items, changedsince, vanished = _fetch_tail(r, uid)
        if tail is not None and r.at_end():
            if len(_TAILS) >= _TAILS_MAX:
                _TAILS.clear()
            _TAILS[tail] = (items, changedsince, vanished)
    return Fetch(uid, seq, items, changedsince, vanished)


def _fetch_tail(r: Reader, uid: bool) -> tuple[tuple[FetchItem, ...], int | None, bool]:
    items = _fetch_items(r)
    changedsince: int | None = None
    vanished = False
    if r.accept(b" "):
        modifiers = r.items(lambda: _modifier(r, ("CHANGEDSINCE", "VANISHED")), "fetch modifier")
        names = [name for name, _ in modifiers]
        if len(set(names)) != len(names):
            raise ParseError("repeated fetch modifier")
        for name, value in modifiers:
            if name == "CHANGEDSINCE":
                changedsince = value
            else:
                vanished = True
    if vanished and (not uid or changedsince is None):
        raise ParseError("VANISHED needs UID FETCH with CHANGEDSINCE")  # RFC 7162 §3.2.6
    return items, changedsince, vanished


def parse_store(r: Reader, uid: bool) -> Store:
    """``[UID] STORE set [(UNCHANGEDSINCE n)] [+|-]FLAGS[.SILENT] flags`` (RFC 9051 §6.4.6, RFC 7162 §3.1.3)."""
    r.sp("sequence set")
    seq = r.sequence_set()
    r.sp("store attribute")
    unchangedsince: int | None = None
    if r.peek() == 0x28:
        modifiers = r.items(lambda: _modifier(r, ("UNCHANGEDSINCE",)), "store modifier")
        if len(modifiers) > 1:
            raise ParseError("repeated store modifier")
        unchangedsince = modifiers[0][1]
        r.sp("store attribute")
    att = r.match(_STORE_ATT, "store attribute").decode("ascii").upper()
    mode = att[0] if att[0] in "+-" else ""
    base = att.removeprefix(mode)
    if base not in ("FLAGS", "FLAGS.SILENT"):
        raise ParseError(f"invalid store attribute {att[:40]}")
    r.sp("flags")
    if r.peek() == 0x28:
        flags = r.flag_list()
    else:
        more = [r.flag()]
        while r.accept(b" "):
            more.append(r.flag())
        flags = tuple(more)
    return Store(uid, seq, mode, base.endswith(".SILENT"), flags, unchangedsince)


def parse_copy(r: Reader, uid: bool) -> Copy:
    """``[UID] COPY set mailbox`` (RFC 9051 §6.4.7)."""
    r.sp("sequence set")
    seq = r.sequence_set()
    r.sp("mailbox name")
    return Copy(uid, seq, r.mailbox())


def parse_move(r: Reader, uid: bool) -> Move:
    """``[UID] MOVE set mailbox`` (RFC 6851 §3)."""
    r.sp("sequence set")
    seq = r.sequence_set()
    r.sp("mailbox name")
    return Move(uid, seq, r.mailbox())


def parse_expunge(r: Reader, uid: bool) -> Expunge:
    """``EXPUNGE`` or ``UID EXPUNGE set`` (RFC 9051 §6.4.3, §6.4.9)."""
    if not uid:
        return Expunge(None)
    r.sp("UID set")
    return Expunge(r.sequence_set("UID set"))
