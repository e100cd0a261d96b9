"""Mailbox commands: SELECT/EXAMINE, CREATE, LIST, LSUB, STATUS, APPEND (RFC 9051 §6.3).

With CONDSTORE / QRESYNC select parameters (RFC 7162 §3.1.8, §3.2.5),
CREATE ... USE (RFC 6154 §3), LIST-EXTENDED (RFC 5258 §3) with LIST-STATUS
(RFC 5819 §2) and SPECIAL-USE (RFC 6154 §5), MULTIAPPEND (RFC 3502 §6),
CATENATE (RFC 4469 §5), BINARY APPEND (RFC 3516 §4.4) and UTF8 APPEND
(RFC 6855 §4). Unknown parameters and options are refused with BAD, as
RFC 4466 §2.1 and RFC 5258 §3 require.
"""

from __future__ import annotations

import datetime as _dt
import re

from dizimail.codec.imap.commands import Append, AppendMessage, Create, List, Lsub, QresyncParams, Select, Status
from dizimail.codec.imap.reader import ParseError, Reader
from dizimail.codec.imap.search import MONTHS
from dizimail.codec.imap.seqset import SequenceSet

STATUS_ITEMS = frozenset(
    {"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ", "SIZE", "APPENDLIMIT", "DELETED",
     "MAILBOXID"}
)  # fmt: skip
SELECTION_OPTIONS = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})  # RFC 5258 §3.1, RFC 6154
RETURN_OPTIONS = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"})  # RFC 5258 §3.2, RFC 5819
SPECIAL_USE = {u.upper(): u for u in ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")}

_USE_ATTR = re.compile(rb'\\[^\x00-\x20\x7f-\xff(){%*"\\\]]+')
# RFC 9051 §9 date-time; a one-digit day without its leading space is tolerated.
_DATE_TIME = re.compile(
    rb'"( ?[0-9]|[0-9]{2})-([A-Za-z]{3})-([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"'
)


def _select_param(r: Reader) -> tuple[str, QresyncParams | None]:
    name = r.keyword("select parameter")
    if name == "CONDSTORE":
        return name, None
    if name != "QRESYNC":
        raise ParseError(f"unknown select parameter {name[:40]}")
    r.sp("QRESYNC parameters")
    r.expect(b"(", "'(' before QRESYNC parameters")
    uidvalidity = r.number("UIDVALIDITY", nonzero=True)
    r.sp("mod-sequence")
    modseq = r.number("mod-sequence", bits=63)
    known: SequenceSet | None = None
    match: tuple[SequenceSet, SequenceSet] | None = None
    if r.accept(b" "):
        if r.peek() != 0x28:
            known = _known_set(r, "known UIDs")
            if r.accept(b" "):
                match = _seq_match(r)
        else:
            match = _seq_match(r)
    r.expect(b")", "')' after QRESYNC parameters")
    return name, QresyncParams(uidvalidity, modseq, known, match)


def _known_set(r: Reader, what: str) -> SequenceSet:
    seq = r.sequence_set(what)
    if seq.uses_saved or any(b is None for pair in seq.ranges for b in pair):
        raise ParseError(f"{what} must not contain '*' or '$'")  # RFC 7162 §3.2.5
    return seq


def _seq_match(r: Reader) -> tuple[SequenceSet, SequenceSet]:
    r.expect(b"(", "'(' before sequence match data")
    seqs = _known_set(r, "known sequence set")
    r.sp("known UID set")
    uids = _known_set(r, "known UID set")
    r.expect(b")", "')' after sequence match data")
    return seqs, uids


def parse_select(r: Reader, readonly: bool) -> Select:
    """``SELECT`` / ``EXAMINE mailbox [(params)]`` (RFC 9051 §6.3.2, RFC 4466 §2.1, RFC 7162)."""
    r.sp("mailbox name")
    mailbox = r.mailbox()
    params: dict[str, QresyncParams | None] = {}
    if r.accept(b" "):
        for name, value in r.items(lambda: _select_param(r), "select parameter"):
            if name in params:
                raise ParseError(f"repeated select parameter {name}")
            params[name] = value
    return Select(mailbox, readonly, "CONDSTORE" in params, params.get("QRESYNC"))


def _use_attr(r: Reader) -> str:
    attr = r.match(_USE_ATTR, "special-use attribute").decode("ascii")
    return SPECIAL_USE.get(attr.upper(), attr)


def parse_create(r: Reader, uid: bool) -> Create:
    """``CREATE mailbox [(USE (attrs))]`` (RFC 9051 §6.3.4, RFC 6154 §3)."""
    r.sp("mailbox name")
    mailbox = r.mailbox()
    special: tuple[str, ...] = ()
    if r.accept(b" "):

        def param() -> tuple[str, ...]:
            name = r.keyword("create parameter")
            if name != "USE":
                raise ParseError(f"unknown create parameter {name[:40]}")
            r.sp("USE attributes")
            return tuple(r.items(lambda: _use_attr(r), "special-use attribute", allow_empty=True))

        for attrs in r.items(param, "create parameter"):
            special += attrs
    return Create(mailbox, special)


def _status_items(r: Reader) -> tuple[str, ...]:
    def item() -> str:
        name = r.keyword("status item")
        if name not in STATUS_ITEMS:
            raise ParseError(f"unknown status item {name[:40]}")
        return name

    return tuple(r.items(item, "status item"))


def parse_status(r: Reader, uid: bool) -> Status:
    """``STATUS mailbox (items)`` (RFC 9051 §6.3.11)."""
    r.sp("mailbox name")
    mailbox = r.mailbox()
    r.sp("status items")
    return Status(mailbox, _status_items(r))


def parse_list(r: Reader, uid: bool) -> List:
    """``LIST [(selection)] reference pattern(s) [RETURN (options)]`` (RFC 9051 §6.3.9, RFC 5258 §3)."""
    r.sp("reference")
    selection: tuple[str, ...] = ()
    if r.peek() == 0x28:
        selection = tuple(r.items(lambda: r.keyword("selection option"), "selection option", allow_empty=True))
        unknown = set(selection) - SELECTION_OPTIONS
        if unknown:
            raise ParseError(f"unknown LIST selection option {sorted(unknown)[0][:40]}")
        if "RECURSIVEMATCH" in selection and not set(selection) - {"RECURSIVEMATCH", "REMOTE"}:
            raise ParseError("RECURSIVEMATCH needs another selection option")  # RFC 5258 §3.1
        r.sp("reference")
    reference = r.astring_text("reference")
    r.sp("mailbox pattern")
    if r.peek() == 0x28:
        patterns = tuple(r.items(r.list_mailbox, "mailbox pattern"))
    else:
        patterns = (r.list_mailbox(),)
    returns: list[str] = []
    status_items: tuple[str, ...] = ()
    if r.accept(b" "):
        if not r.accept_keyword("RETURN"):
            raise ParseError("expected RETURN")
        r.sp("return options")

        def option() -> str:
            nonlocal status_items
            name = r.keyword("return option")
            if name not in RETURN_OPTIONS or name in returns:
                raise ParseError(f"invalid LIST return option {name[:40]}")
            if name == "STATUS":
                r.sp("status items")
                status_items = _status_items(r)
            returns.append(name)
            return name

        r.items(option, "return option", allow_empty=True)
    return List(reference, patterns, selection, tuple(returns), status_items)


def parse_lsub(r: Reader, uid: bool) -> Lsub:
    """``LSUB reference pattern`` (RFC 3501 §6.3.9)."""
    r.sp("reference")
    reference = r.astring_text("reference")
    r.sp("mailbox pattern")
    return Lsub(reference, r.list_mailbox())


def date_time(r: Reader) -> _dt.datetime:
    """``date-time`` (RFC 9051 §9): ``"dd-Mon-yyyy hh:mm:ss +zzzz"``, timezone-aware."""
    m = _DATE_TIME.match(r.data, r.pos)
    if m is None:
        raise ParseError("invalid date-time")
    r.pos = m.end()
    day, month, year, hh, mm, ss, sign, zh, zm = (g.decode("ascii") for g in m.groups())
    try:
        offset = _dt.timedelta(hours=int(zh), minutes=int(zm))
        if int(zm) >= 60:
            raise ValueError("zone minutes")
        zone = _dt.timezone(-offset if sign == "-" else offset)
        month_number = MONTHS.index(month.upper()) + 1
        return _dt.datetime(int(year), month_number, int(day), int(hh), int(mm), int(ss), tzinfo=zone)
    except ValueError:
        raise ParseError("invalid date-time") from None


def _message_literal(r: Reader, what: str) -> tuple[bytes, bool]:
    if r.peek() not in (0x7B, 0x7E):  # "{" or "~": a quoted string is no message
        raise ParseError(f"missing {what}" if r.at_end() else f"expected literal for {what}")
    return r.string8(what)


def _cat_part(r: Reader) -> tuple[str, bytes | str]:
    kind = r.keyword("CATENATE part")
    r.sp("CATENATE part")
    if kind == "TEXT":
        return kind, _message_literal(r, "CATENATE text")[0]
    if kind == "URL":
        return kind, r.astring_text("CATENATE URL")
    raise ParseError(f"invalid CATENATE part {kind[:40]}")


def _append_message(r: Reader) -> AppendMessage:
    flags: tuple[str, ...] = ()
    when: _dt.datetime | None = None
    if r.peek() == 0x28:
        flags = r.flag_list()
        r.sp("message")
    if r.peek() == 0x22:
        when = date_time(r)
        r.sp("message")
    if r.accept_keyword("CATENATE"):
        r.sp("CATENATE parts")
        parts = tuple(r.items(lambda: _cat_part(r), "CATENATE part"))
        return AppendMessage(flags, when, b"", False, parts)
    if r.accept_keyword("UTF8"):  # RFC 6855 §4: "UTF8" SP "(" literal8 ")"
        r.sp("message")
        r.expect(b"(", "'(' before UTF8 message")
        data = _message_literal(r, "message")[0]
        r.expect(b")", "')' after UTF8 message")
        return AppendMessage(flags, when, data, True)
    data, binary = _message_literal(r, "message")
    return AppendMessage(flags, when, data, binary)


def parse_append(r: Reader, uid: bool) -> Append:
    """``APPEND mailbox 1*([flags] [date-time] message)`` (RFC 9051 §6.3.12, RFC 3502 §6)."""
    r.sp("mailbox name")
    mailbox = r.mailbox()
    r.sp("message")
    messages = [_append_message(r)]
    while not r.at_end():
        r.sp("message")
        messages.append(_append_message(r))
    return Append(mailbox, tuple(messages))
