"""From one complete command to a typed :data:`Command` (RFC 9051 §6, §9; RFC 3501 §6, §9).

``command = tag SP (command-any / command-auth / command-nonauth /
command-select) CRLF``: the tag, the command name (case-insensitive, with
the ``UID`` prefix for the commands RFC 9051 §6.4.9 and its extensions
allow), then the arguments of that command, then the end of the command.
Which commands a state allows is the session's business; this module only
checks syntax. Handlers come from one table built at import, never from
attribute lookups on client input.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping

from dizimail.codec.imap.commands import (
    Authenticate,
    Capability,
    Check,
    Close,
    Command,
    Compress,
    Delete,
    Enable,
    GetQuota,
    GetQuotaRoot,
    Id,
    Idle,
    Login,
    Logout,
    Namespace,
    Noop,
    Rename,
    SetQuota,
    StartTls,
    Subscribe,
    Unauthenticate,
    Unselect,
    Unsubscribe,
)
from dizimail.codec.imap.fetch import parse_copy, parse_expunge, parse_fetch, parse_move, parse_store
from dizimail.codec.imap.mailbox import (
    parse_append,
    parse_create,
    parse_list,
    parse_lsub,
    parse_select,
    parse_status,
)
from dizimail.codec.imap.notify import parse_cancelupdate, parse_notify
from dizimail.codec.imap.reader import TAG, ParseError, Reader, utf8
from dizimail.codec.imap.search import parse_search, parse_sort, parse_thread

Handler = Callable[[Reader, bool], Command]

_SASL_INITIAL = re.compile(rb"(?:[A-Za-z0-9+/]+={0,2}|=)\Z")  # RFC 4959 §7, base64 or "=" for empty
UID_COMMANDS = frozenset({"FETCH", "STORE", "COPY", "MOVE", "SEARCH", "EXPUNGE", "SORT", "THREAD"})


def _bare(command: Command) -> Handler:
    def parse(r: Reader, uid: bool) -> Command:
        return command  # extra arguments are refused by the caller's end-of-command check

    return parse


def _mailbox_only(factory: Callable[[str], Command]) -> Handler:
    def parse(r: Reader, uid: bool) -> Command:
        r.sp("mailbox name")
        return factory(r.mailbox())

    return parse


def _authenticate(r: Reader, uid: bool) -> Authenticate:
    """``AUTHENTICATE mechanism [initial-response]`` (RFC 9051 §6.2.2, RFC 4959 §3)."""
    r.sp("mechanism")
    mechanism = r.keyword("mechanism")
    initial = None
    if r.accept(b" "):
        initial = r.match(_SASL_INITIAL, "initial response").decode("ascii")
    return Authenticate(mechanism, initial)


def _login(r: Reader, uid: bool) -> Login:
    """``LOGIN userid password`` (RFC 9051 §6.2.3), both astrings."""
    r.sp("user name")
    user = r.astring_text("user name")
    r.sp("password")
    return Login(user, r.astring_text("password"))


def _enable(r: Reader, uid: bool) -> Enable:
    """``ENABLE 1*(SP capability)`` (RFC 5161 §4)."""
    capabilities = []
    r.sp("capability")
    capabilities.append(r.keyword("capability"))
    while r.accept(b" "):
        capabilities.append(r.keyword("capability"))
    return Enable(tuple(capabilities))


def _rename(r: Reader, uid: bool) -> Rename:
    """``RENAME old new`` (RFC 9051 §6.3.6)."""
    r.sp("mailbox name")
    old = r.mailbox()
    r.sp("new mailbox name")
    return Rename(old, r.mailbox("new mailbox name"))


def _id(r: Reader, uid: bool) -> Id:
    """``ID (field value ...)`` / ``ID NIL`` (RFC 2971 §4)."""
    r.sp("ID parameters")
    if r.accept_keyword("NIL"):
        return Id(None)

    def pair() -> tuple[str, str | None]:
        field = utf8(r.string("ID field"), "ID field")
        r.sp("ID value")
        value = r.nstring("ID value")
        return field, None if value is None else utf8(value, "ID value")

    return Id(tuple(r.items(pair, "ID parameter", allow_empty=True)))


def _compress(r: Reader, uid: bool) -> Compress:
    """``COMPRESS algorithm`` (RFC 4978 §3)."""
    r.sp("compression algorithm")
    return Compress(r.keyword("compression algorithm"))


def _getquota(r: Reader, uid: bool) -> GetQuota:
    """``GETQUOTA root`` (RFC 9208 §4.2)."""
    r.sp("quota root")
    return GetQuota(r.astring_text("quota root"))


def _setquota(r: Reader, uid: bool) -> SetQuota:
    """``SETQUOTA root ([resource limit ...])`` (RFC 9208 §4.4)."""
    r.sp("quota root")
    root = r.astring_text("quota root")
    r.sp("quota limits")

    def resource() -> tuple[str, int]:
        name = r.keyword("quota resource")
        r.sp("quota limit")
        return name, r.number("quota limit", bits=63)

    return SetQuota(root, tuple(r.items(resource, "quota resource", allow_empty=True)))


COMMANDS: Mapping[str, Handler] = {
    "CAPABILITY": _bare(Capability()),
    "NOOP": _bare(Noop()),
    "LOGOUT": _bare(Logout()),
    "STARTTLS": _bare(StartTls()),
    "AUTHENTICATE": _authenticate,
    "LOGIN": _login,
    "ENABLE": _enable,
    "SELECT": lambda r, uid: parse_select(r, False),
    "EXAMINE": lambda r, uid: parse_select(r, True),
    "CREATE": parse_create,
    "DELETE": _mailbox_only(Delete),
    "RENAME": _rename,
    "SUBSCRIBE": _mailbox_only(Subscribe),
    "UNSUBSCRIBE": _mailbox_only(Unsubscribe),
    "LIST": parse_list,
    "LSUB": parse_lsub,
    "NAMESPACE": _bare(Namespace()),
    "STATUS": parse_status,
    "APPEND": parse_append,
    "CHECK": _bare(Check()),
    "CLOSE": _bare(Close()),
    "UNSELECT": _bare(Unselect()),
    "EXPUNGE": parse_expunge,
    "SEARCH": parse_search,
    "FETCH": parse_fetch,
    "STORE": parse_store,
    "COPY": parse_copy,
    "MOVE": parse_move,
    "IDLE": _bare(Idle()),
    "ID": _id,
    "COMPRESS": _compress,
    "GETQUOTA": _getquota,
    "GETQUOTAROOT": _mailbox_only(GetQuotaRoot),
    "SETQUOTA": _setquota,
    "SORT": parse_sort,
    "THREAD": parse_thread,
    "NOTIFY": parse_notify,
    "CANCELUPDATE": parse_cancelupdate,
    "UNAUTHENTICATE": _bare(Unauthenticate()),
}


def parse_head(r: Reader) -> tuple[str, str, bool]:
    """Tag, upper-cased command name and UID prefix; ParseError (with ``tag`` when known) otherwise."""
    raw_tag = r.try_match(TAG)
    if raw_tag is None:
        raise ParseError("empty command line" if r.at_end() else "missing or invalid tag")
    tag = raw_tag.decode("ascii")
    try:
        r.sp("command name")
        name = r.keyword("command name")
        uid = name == "UID"
        if uid:
            r.sp("command after UID")
            name = r.keyword("command after UID")
            if name not in UID_COMMANDS:
                raise ParseError("Unknown command")
        if name not in COMMANDS:
            raise ParseError("Unknown command")
    except ParseError as e:
        e.tag = tag
        raise
    return tag, name, uid


# Commands kept by what follows their tag: a client sends the same NOOP, STATUS, FETCH of a list page
# and IDLE again and again, with only the tag changing. Commands are immutable. Lines with a literal and
# LOGIN/AUTHENTICATE (credentials) are never kept.
KEPT_COMMANDS = 512
KEPT_LINE = 2048  # bytes
_kept: dict[bytes, Command] = {}
_NOT_KEPT = (Login, Authenticate)


def parse_command(data: bytes, literals: Mapping[int, tuple[bytes, bool]] | None = None) -> tuple[str, Command]:
    """Parse one whole command (line pieces joined, literal bodies in ``literals``); return (tag, command).

    Raises :class:`ParseError` with ``tag`` set whenever the tag could be read.
    """
    if literals or len(data) > KEPT_LINE:
        return _parse(data, literals)
    cut = data.find(b" ")
    kept = _kept.get(data[cut:]) if cut > 0 else None
    if kept is not None and TAG.fullmatch(data, 0, cut):
        tag = data[:cut].decode("ascii")
        return tag, dataclasses.replace(kept, tag=tag)
    tag, command = _parse(data, None)
    if not isinstance(command, _NOT_KEPT):
        if len(_kept) >= KEPT_COMMANDS:
            del _kept[next(iter(_kept))]
        _kept[data[len(tag):]] = command
    return tag, command


def _parse(data: bytes, literals: Mapping[int, tuple[bytes, bool]] | None) -> tuple[str, Command]:
    r = Reader(data, literals)
    tag, name, uid = parse_head(r)
    try:
        command = COMMANDS[name](r, uid)
        r.end()
    except ParseError as e:
        e.tag = tag
        raise
    return tag, dataclasses.replace(command, tag=tag)
