"""POP3 command parser and multi-line response helpers, sans-IO.

Commands are those of RFC 1939 §5-7 (USER, PASS, STAT, LIST, UIDL, RETR, TOP,
DELE, RSET, NOOP, QUIT), CAPA (RFC 2449 §5), STLS (RFC 2595 §4) and AUTH
(RFC 5034 §4). Which commands a state allows is the session's business; the
parser only checks syntax and raises :class:`Pop3SyntaxError` with a short
text for the ``-ERR`` reply.

:class:`DotStuffer` byte-stuffs a multi-line response (RFC 1939 §3) as it is
streamed; :func:`top_lines` cuts a message for TOP (RFC 1939 §7).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias


class Pop3SyntaxError(Exception):
    """A command line the server refuses; ``text`` goes after ``-ERR`` (RFC 1939 §3)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True, slots=True)
class User:
    """USER name (RFC 1939 §7)."""

    name: str


@dataclass(frozen=True, slots=True)
class Pass:
    """PASS string (RFC 1939 §7): everything after the first space, spaces included."""

    password: str


@dataclass(frozen=True, slots=True)
class Stat:
    """STAT (RFC 1939 §5)."""


@dataclass(frozen=True, slots=True)
class List:
    """LIST [msg] (RFC 1939 §5)."""

    msg: int | None


@dataclass(frozen=True, slots=True)
class Uidl:
    """UIDL [msg] (RFC 1939 §7)."""

    msg: int | None


@dataclass(frozen=True, slots=True)
class Retr:
    """RETR msg (RFC 1939 §5)."""

    msg: int


@dataclass(frozen=True, slots=True)
class Top:
    """TOP msg n (RFC 1939 §7); ``lines`` may be 0."""

    msg: int
    lines: int


@dataclass(frozen=True, slots=True)
class Dele:
    """DELE msg (RFC 1939 §5)."""

    msg: int


@dataclass(frozen=True, slots=True)
class Rset:
    """RSET (RFC 1939 §5)."""


@dataclass(frozen=True, slots=True)
class Noop:
    """NOOP (RFC 1939 §5)."""


@dataclass(frozen=True, slots=True)
class Quit:
    """QUIT (RFC 1939 §4, §6)."""


@dataclass(frozen=True, slots=True)
class Capa:
    """CAPA (RFC 2449 §5)."""


@dataclass(frozen=True, slots=True)
class Stls:
    """STLS (RFC 2595 §4)."""


@dataclass(frozen=True, slots=True)
class Auth:
    """AUTH [mechanism [initial-response]] (RFC 5034 §4); mechanism upper-cased.

    A bare ``AUTH`` (mechanism ``None``) asks for the mechanism list, as many
    clients still send it. ``initial`` is the base64 text as sent; "=" means empty.
    """

    mechanism: str | None
    initial: str | None


Command: TypeAlias = (
    User | Pass | Stat | List | Uidl | Retr | Top | Dele | Rset | Noop | Quit | Capa | Stls | Auth
)

_CONTROLS = re.compile(rb"[\x00-\x1f\x7f]")
_NUMBER = re.compile(r"[0-9]{1,10}")
_SASL_MECH = re.compile(r"[A-Z0-9_-]{1,20}")  # RFC 4422 §3.1


def _number(arg: str, *, zero_ok: bool, what: str) -> int:
    """A decimal argument below 2**31 (RFC 1939 §3: message numbers start at 1)."""
    if not _NUMBER.fullmatch(arg):
        raise Pop3SyntaxError(f"bad {what}")
    value = int(arg)
    if value >= 2**31 or (value == 0 and not zero_ok):
        raise Pop3SyntaxError(f"bad {what}")
    return value


def _args(rest: str, low: int, high: int) -> list[str]:
    args = [a for a in rest.split(" ") if a]
    if len(args) < low:
        raise Pop3SyntaxError("missing argument")
    if len(args) > high:
        raise Pop3SyntaxError("too many arguments")
    return args


def _msg(rest: str) -> int:
    return _number(_args(rest, 1, 1)[0], zero_ok=False, what="message number")


def _optional_msg(rest: str) -> int | None:
    args = _args(rest, 0, 1)
    return _number(args[0], zero_ok=False, what="message number") if args else None


def _user(rest: str) -> Command:
    name = rest.strip(" ")
    if not name:
        raise Pop3SyntaxError("missing argument")
    return User(name)


def _pass(rest: str) -> Command:
    # rest is everything after the single space following the keyword: spaces belong to the password.
    if not rest:
        raise Pop3SyntaxError("missing argument")
    return Pass(rest)


def _top(rest: str) -> Command:
    msg, lines = _args(rest, 2, 2)
    return Top(
        _number(msg, zero_ok=False, what="message number"),
        _number(lines, zero_ok=True, what="number of lines"),
    )


def _auth(rest: str) -> Command:
    args = _args(rest, 0, 2)
    if not args:
        return Auth(None, None)
    mechanism = args[0].upper()
    if not _SASL_MECH.fullmatch(mechanism):
        raise Pop3SyntaxError("bad mechanism name")
    return Auth(mechanism, args[1] if len(args) == 2 else None)


def _bare(cmd: Command) -> Callable[[str], Command]:
    def parse(rest: str) -> Command:
        _args(rest, 0, 0)
        return cmd

    return parse


_KEYWORDS: dict[bytes, Callable[[str], Command]] = {
    b"USER": _user,
    b"PASS": _pass,
    b"STAT": _bare(Stat()),
    b"LIST": lambda rest: List(_optional_msg(rest)),
    b"UIDL": lambda rest: Uidl(_optional_msg(rest)),
    b"RETR": lambda rest: Retr(_msg(rest)),
    b"TOP": _top,
    b"DELE": lambda rest: Dele(_msg(rest)),
    b"RSET": _bare(Rset()),
    b"NOOP": _bare(Noop()),
    b"QUIT": _bare(Quit()),
    b"CAPA": _bare(Capa()),
    b"STLS": _bare(Stls()),
    b"AUTH": _auth,
}


def parse_command(line: bytes) -> Command:
    """Parse one POP3 command line given without its CRLF (RFC 1939 §3).

    Keywords are case-insensitive and separated from arguments by a space;
    arguments must be valid UTF-8 (RFC 6856 §2) without control characters.
    """
    keyword, _, rest = line.partition(b" ")
    handler = _KEYWORDS.get(keyword.upper())
    if handler is None:
        raise Pop3SyntaxError("unknown command")
    if _CONTROLS.search(rest):
        raise Pop3SyntaxError("control characters in command")
    try:
        text = rest.decode("utf-8")
    except UnicodeDecodeError:
        raise Pop3SyntaxError("invalid UTF-8 in command") from None
    return handler(text)


class DotStuffer:
    """Streaming byte-stuffer for a multi-line response (RFC 1939 §3).

    Every line starting with "." gets one more "." in front, across chunk
    boundaries. A line starts after any LF (bare or not): clients that split
    on LF alone must never see a premature terminator. Other bytes pass
    unchanged; stored mail is already CRLF.
    """

    def __init__(self) -> None:
        self._tail = b""  # the last (at most two) bytes fed, to know the line state

    def feed(self, chunk: bytes) -> bytes:
        """Return ``chunk`` dot-stuffed."""
        if not chunk:
            return b""
        out = chunk.replace(b"\n.", b"\n..")
        if chunk[0] == 0x2E and (not self._tail or self._tail.endswith(b"\n")):
            out = b"." + out
        self._tail = (self._tail + chunk)[-2:]
        return out

    def finish(self) -> bytes:
        """The end of the response: CRLF unless the data ended with CRLF (or was empty), then ".\\r\\n"."""
        if not self._tail or self._tail == b"\r\n":
            return b".\r\n"
        return b"\r\n.\r\n"


def top_lines(message: bytes, n: int) -> bytes:
    """The header, the blank line and the first ``n`` body lines of a CRLF message (RFC 1939 §7).

    A message without a blank line is all header and is returned whole.
    """
    if n < 0:
        raise ValueError("negative line count")
    if message.startswith(b"\r\n"):
        end = 2
    else:
        blank = message.find(b"\r\n\r\n")
        if blank < 0:
            return message
        end = blank + 4
    for _ in range(n):
        eol = message.find(b"\r\n", end)
        if eol < 0:
            return message
        end = eol + 2
    return message[:end]
