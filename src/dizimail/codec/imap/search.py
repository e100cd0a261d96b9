"""SEARCH, SORT and THREAD arguments (RFC 9051 §6.4.4, RFC 3501 §6.4.4, RFC 5256 §3).

Extensions: ESEARCH return options (RFC 4731 §3.1) with SAVE (RFC 5182 §2),
ESORT (RFC 5267 §3.2), CONTEXT, UPDATE and PARTIAL (RFC 5267 §4; negative
PARTIAL ranges from RFC 9394 §3.1), the CONDSTORE MODSEQ key (RFC 7162 §3.1.5) and
OLDER / YOUNGER (RFC 5032 §3). Strings (atoms, quoted strings, literals) are
decoded with the CHARSET given: any text codec Python knows (UTF-8,
US-ASCII, GB2312, GBK, ...); an unknown one is refused with the BADCHARSET
code (RFC 9051 §6.4.4). Nesting is bounded so that hostile input cannot
exhaust the stack.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from typing import Literal

from dizimail.codec.imap.commands import Search, Sort, Thread
from dizimail.codec.imap.reader import ParseError, Reader, utf8
from dizimail.codec.imap.searchkeys import (
    All,
    And,
    Body,
    DateKey,
    Flag,
    Header,
    ModSeq,
    Not,
    Older,
    Or,
    SearchKey,
    Seq,
    Size,
    Text,
    Uid,
    Younger,
)

MAX_DEPTH = 32  # nested parentheses / NOT / OR
RETURN_OPTIONS = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE",  # RFC 4731 §3.1, RFC 5182 §2
                            "CONTEXT", "UPDATE", "PARTIAL"})  # RFC 5267 §4
SORT_KEYS = frozenset({"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"})

_CHARSET_NAME = re.compile(r"[A-Za-z0-9._:+-]{1,40}")
_DATE = re.compile(rb'([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})|"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})"')
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_SEQ_START = frozenset(b"0123456789*$")
_PARTIAL_RANGE = re.compile(rb"(-?)([0-9]{1,10}):(-?)([0-9]{1,10})")

_FLAG_KEYS: dict[str, tuple[str, bool]] = {
    "ANSWERED": ("\\Answered", True),
    "UNANSWERED": ("\\Answered", False),
    "DELETED": ("\\Deleted", True),
    "UNDELETED": ("\\Deleted", False),
    "DRAFT": ("\\Draft", True),
    "UNDRAFT": ("\\Draft", False),
    "FLAGGED": ("\\Flagged", True),
    "UNFLAGGED": ("\\Flagged", False),
    "SEEN": ("\\Seen", True),
    "UNSEEN": ("\\Seen", False),
    "RECENT": ("\\Recent", True),
    "OLD": ("\\Recent", False),
}
_HEADER_KEYS = frozenset({"FROM", "TO", "CC", "BCC", "SUBJECT"})
_OTHER_KEYS_WITH_ARGUMENTS = frozenset(
    {"NOT", "OR", "KEYWORD", "UNKEYWORD", "HEADER", "TEXT", "BODY", "LARGER", "SMALLER", "UID", "MODSEQ", "OLDER",
     "YOUNGER"}
)  # fmt: skip
_DATE_KEYS: dict[str, tuple[Literal["internal", "sent"], Literal["before", "on", "since"]]] = {
    "BEFORE": ("internal", "before"),
    "ON": ("internal", "on"),
    "SINCE": ("internal", "since"),
    "SENTBEFORE": ("sent", "before"),
    "SENTON": ("sent", "on"),
    "SENTSINCE": ("sent", "since"),
}

Decoder = Callable[[bytes], str]


def charset(r: Reader) -> str:
    """A CHARSET argument (astring), upper-cased; BADCHARSET when Python has no text codec for it."""
    name = utf8(r.astring("charset"), "charset")
    if _CHARSET_NAME.fullmatch(name) is None:
        raise ParseError("unsupported charset", "BADCHARSET")
    try:
        b"x".decode(name)  # bytes.decode accepts text encodings only: no base64, zlib or rot13 here
    except LookupError:
        raise ParseError(f"unsupported charset {name}", "BADCHARSET") from None
    except UnicodeDecodeError:
        pass  # a real text codec (UTF-16 wants two bytes)
    return name.upper()


def decoder(name: str | None) -> Decoder:
    """Decode search strings with ``name`` (default UTF-8, which covers US-ASCII; RFC 9051 §6.4.4)."""
    encoding = name or "utf-8"

    def decode(raw: bytes) -> str:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            raise ParseError(f"search string is not valid {encoding}") from None

    return decode


def date(r: Reader) -> _dt.date:
    """``date`` (RFC 9051 §9): ``d-Mon-yyyy``, optionally quoted."""
    m = _DATE.match(r.data, r.pos)
    if m is None:
        raise ParseError("missing date" if r.at_end() else "expected date like 1-Feb-2026")
    r.pos = m.end()
    day, month, year = m.group(1, 2, 3) if m[1] else m.group(4, 5, 6)
    try:
        return _dt.date(int(year), MONTHS.index(month.decode("ascii").upper()) + 1, int(day))
    except ValueError:
        raise ParseError("invalid date") from None


def _modseq(r: Reader) -> ModSeq:
    if r.peek() == 0x22:  # [entry-name SP entry-type-req SP] (RFC 7162 §3.1.5), ignored
        r.string("MODSEQ entry name")
        r.sp("MODSEQ entry type")
        if r.keyword("MODSEQ entry type") not in ("PRIV", "SHARED", "ALL"):
            raise ParseError("invalid MODSEQ entry type")
        r.sp("mod-sequence")
    return ModSeq(r.number("mod-sequence", bits=63))


def search_key(r: Reader, decode: Decoder, depth: int = 0) -> SearchKey:
    """One ``search-key`` (RFC 9051 §6.4.4, §9)."""
    if depth > MAX_DEPTH:
        raise ParseError("search criteria nested too deeply")
    first = r.peek()
    if first == 0x28:  # "("
        keys = r.items(lambda: search_key(r, decode, depth + 1), "search key")
        return keys[0] if len(keys) == 1 else And(tuple(keys))
    if first in _SEQ_START:
        return Seq(r.sequence_set())
    name = r.keyword("search key")
    if name in _FLAG_KEYS:
        return Flag(*_FLAG_KEYS[name])
    if name == "ALL":
        return All()
    if name == "NEW":
        return And((Flag("\\Recent", True), Flag("\\Seen", False)))
    if name not in _HEADER_KEYS and name not in _DATE_KEYS and name not in _OTHER_KEYS_WITH_ARGUMENTS:
        raise ParseError(f"unknown search key {name[:40]}")
    r.sp(f"argument to {name}")
    if name in _HEADER_KEYS:
        return Header(name, decode(r.astring(name)))
    if name in _DATE_KEYS:
        which, op = _DATE_KEYS[name]
        return DateKey(which, op, date(r))
    if name == "NOT":
        return Not(search_key(r, decode, depth + 1))
    if name == "OR":
        a = search_key(r, decode, depth + 1)
        r.sp("second key of OR")
        return Or(a, search_key(r, decode, depth + 1))
    if name in ("KEYWORD", "UNKEYWORD"):
        return Flag(r.atom("keyword"), name == "KEYWORD")
    if name == "HEADER":
        field = r.header_field().upper()
        r.sp("header value")
        return Header(field, decode(r.astring("header value")))
    if name in ("TEXT", "BODY"):
        value = decode(r.astring(name))
        return Text(value) if name == "TEXT" else Body(value)
    if name in ("LARGER", "SMALLER"):
        return Size("larger" if name == "LARGER" else "smaller", r.number("size", bits=63))
    if name == "UID":
        return Uid(r.sequence_set("UID set"))
    if name == "MODSEQ":
        return _modseq(r)
    if name in ("OLDER", "YOUNGER"):
        seconds = r.number("interval", nonzero=True)
        return Older(seconds) if name == "OLDER" else Younger(seconds)
    raise ParseError(f"unknown search key {name[:40]}")


def search_program(r: Reader, decode: Decoder) -> SearchKey:
    """``search-key *(SP search-key)`` up to the end of the command; several keys are an ``And``."""
    keys = [search_key(r, decode)]
    while not r.at_end():
        r.sp("search key")
        keys.append(search_key(r, decode))
    return keys[0] if len(keys) == 1 else And(tuple(keys))


def _partial_range(r: Reader) -> tuple[int, int]:
    """``partial-range`` (RFC 5267 §5, RFC 9394 §3.1): ``500:400`` is ``400:500``; no ``*``."""
    m = _PARTIAL_RANGE.match(r.data, r.pos)
    if m is None:
        raise ParseError("expected PARTIAL range like 1:100")
    r.pos = m.end()
    first, last = int(m[2]), int(m[4])
    if m[1] != m[3] or not 0 < first < 2**32 or not 0 < last < 2**32:
        raise ParseError("invalid PARTIAL range")
    low, high = min(first, last), max(first, last)
    return (-low, -high) if m[1] else (low, high)


def return_options(r: Reader) -> tuple[tuple[str, ...] | None, tuple[int, int] | None]:
    """``[RETURN (option...) SP]`` (RFC 4731 §3.1, RFC 5267 §4): the options (None when absent)
    and the PARTIAL range. One PARTIAL or one ALL, not both (RFC 5267 §4.4)."""
    if not r.accept_keyword("RETURN"):
        return None, None
    r.sp("RETURN options")
    partial: list[tuple[int, int]] = []

    def option() -> str:
        name = r.keyword("return option")
        if name not in RETURN_OPTIONS:
            raise ParseError(f"unknown RETURN option {name[:40]}")
        if name == "PARTIAL":
            r.sp("PARTIAL range")
            partial.append(_partial_range(r))
        return name

    options = tuple(r.items(option, "return option", allow_empty=True))
    if len(partial) > 1 or (partial and "ALL" in options):
        raise ParseError("RETURN may hold one PARTIAL or ALL")
    r.sp("search criteria")
    return options, partial[0] if partial else None


def parse_search(r: Reader, uid: bool) -> Search:
    """``[UID] SEARCH [RETURN (...)] [CHARSET x] keys`` (RFC 9051 §6.4.4)."""
    r.sp("search criteria")
    returns, partial = return_options(r)
    name: str | None = None
    if r.accept_keyword("CHARSET"):
        r.sp("charset")
        name = charset(r)
        r.sp("search key")
    return Search(uid, name, search_program(r, decoder(name)), returns, partial)


def _sort_criterion(r: Reader) -> tuple[bool, str]:
    key = r.keyword("sort key")
    reverse = key == "REVERSE"
    if reverse:
        r.sp("sort key")
        key = r.keyword("sort key")
    if key not in SORT_KEYS:
        raise ParseError(f"unknown sort key {key[:40]}")
    return reverse, key


def parse_sort(r: Reader, uid: bool) -> Sort:
    """``[UID] SORT [RETURN (...)] (criteria) charset keys`` (RFC 5256 §3, RFC 5267 §3.2)."""
    r.sp("sort criteria")
    returns, partial = return_options(r)
    criteria = tuple(r.items(lambda: _sort_criterion(r), "sort criterion"))
    r.sp("charset")
    name = charset(r)
    r.sp("search key")
    return Sort(uid, criteria, name, search_program(r, decoder(name)), returns, partial)


def parse_thread(r: Reader, uid: bool) -> Thread:
    """``[UID] THREAD algorithm charset keys`` (RFC 5256 §3)."""
    r.sp("thread algorithm")
    algorithm = r.keyword("thread algorithm")
    r.sp("charset")
    name = charset(r)
    r.sp("search key")
    return Thread(uid, algorithm, name, search_program(r, decoder(name)))
