"""SMTP command parser and DATA decoder (RFC 5321), sans-IO.

:func:`parse_command` turns one command line (without CRLF) into a typed
command or raises :class:`SmtpSyntaxError` carrying the reply to send.
:class:`DataDecoder` turns the raw bytes following a ``354`` reply into body
bytes, removing dot-stuffing and finding the end of data.

Paths follow RFC 5321 §4.1.2 with the RFC 6531 §3.3 UTF-8 extensions;
parameters are those of SIZE (RFC 1870), BODY (RFC 6152, RFC 3030),
SMTPUTF8 (RFC 6531), DSN (RFC 3461) and AUTH (RFC 4954). Whether a parameter
may be used (extension advertised, SMTPUTF8 given for a UTF-8 address, size
within the limit) is the session's decision, not the parser's.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias

from dizimail.codec.body import BodyMeter
from dizimail.util.charclass import from_up


class SmtpSyntaxError(Exception):
    """A command the server refuses, with its reply (RFC 5321 §4.2.3, RFC 3463 enhanced code).

    500 5.5.1 unknown command; 501 5.5.4 bad syntax or arguments; 553 5.1.3
    bad address syntax; 555 5.5.4 unrecognised or bad MAIL/RCPT parameter.
    """

    def __init__(self, code: int, enhanced: str, text: str) -> None:
        super().__init__(f"{code} {enhanced} {text}")
        self.code = code
        self.enhanced = enhanced
        self.text = text


_syntax = functools.partial(SmtpSyntaxError, 501, "5.5.4")
_address_error = functools.partial(SmtpSyntaxError, 553, "5.1.3")
_param_error = functools.partial(SmtpSyntaxError, 555, "5.5.4")


# RFC 6531 §3.3 adds UTF8-non-ascii to atext, qtextSMTP and sub-domains; C1 controls stay out:
# each class is its ASCII part plus U+00A0 and up (util.charclass: the same set, compiled 10x faster).
_U8 = 0xA0
_ATEXT = from_up("A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~", _U8)
_DOT_STRING = re.compile(f"{_ATEXT}+(?:\\.{_ATEXT}+)*")
_QTEXT = from_up(" !#-\\[\\]-~", _U8)
_QUOTED = re.compile(f'"((?:{_QTEXT}|\\\\[ -~])*)"')
_PATH = re.compile(r'<((?:[^">]|"(?:[^"\\]|\\.)*")*)>')  # a ">" may sit inside a quoted local part
_QUOTED_PAIR = re.compile(r"\\(.)")
_LET_DIG, _LDH = from_up("A-Za-z0-9", _U8), from_up("A-Za-z0-9-", _U8)
_LABEL = re.compile(f"{_LET_DIG}(?:{_LDH}*{_LET_DIG})?")
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_ESMTP_VALUE = re.compile(f"{from_up('!-<>-~', _U8)}+")
_XTEXT = re.compile(r"(?:[!-*,-<>-~]|\+[0-9A-Fa-f]{2})*")
_XTEXT_UTF8 = re.compile(f"(?:{from_up('!-*,-<>-~', _U8)}|\\+[0-9A-Fa-f]{{2}})*")
_XTEXT_HEX = re.compile(rb"\+([0-9A-Fa-f]{2})")
_ADDR_TYPE = re.compile(r"[A-Za-z0-9!#$%&'*+\-/?^_`{|}~]+")
_BDAT = re.compile(r"([0-9]{1,18})(?: +((?i:LAST)))?")  # RFC 3030 §2
_AUTH = re.compile(r"([A-Za-z0-9_-]{1,20})(?: +([^ ]+))?")  # RFC 4954 §4, RFC 4422 §3.1 mechanism names
_CONTROLS = re.compile(rb"[\x00-\x1f\x7f]")
_MAX_PATH = 256  # RFC 5321 §4.5.3.1.3, octets including "<" and ">"


@dataclass(frozen=True, slots=True)
class Address:
    """A mailbox (RFC 5321 §4.1.2): local part unquoted, domain lower-cased.

    The bare ``<Postmaster>`` recipient (RFC 5321 §4.1.1.3) has domain ``""``.
    """

    local: str
    domain: str

    @property
    def text(self) -> str:
        """``local@domain``, re-quoting the local part when it is not a dot-string (§4.1.2)."""
        local = self.local
        if not _DOT_STRING.fullmatch(local):
            local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{local}@{self.domain}" if self.domain else local

    @property
    def is_utf8(self) -> bool:
        """True when the address needs SMTPUTF8 (RFC 6531 §3.2)."""
        return not (self.local.isascii() and self.domain.isascii())


@dataclass(frozen=True, slots=True)
class Ehlo:
    """EHLO (``extended``) or HELO (RFC 5321 §4.1.1.1); ``domain`` is the argument as sent."""

    domain: str
    extended: bool


@dataclass(frozen=True, slots=True)
class MailFrom:
    """MAIL FROM (RFC 5321 §4.1.1.2); ``None`` is the null reverse-path ``<>``."""

    address: Address | None
    params: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RcptTo:
    """RCPT TO (RFC 5321 §4.1.1.3); ``postmaster`` only for the domain-less ``<Postmaster>``."""

    address: Address
    params: dict[str, str | None] = field(default_factory=dict)
    postmaster: bool = False


@dataclass(frozen=True, slots=True)
class Data:
    """DATA (RFC 5321 §4.1.1.4)."""


@dataclass(frozen=True, slots=True)
class Bdat:
    """BDAT chunk of ``size`` octets, ``last`` for BDAT ... LAST (RFC 3030 §2)."""

    size: int
    last: bool


@dataclass(frozen=True, slots=True)
class Rset:
    """RSET (RFC 5321 §4.1.1.5)."""


@dataclass(frozen=True, slots=True)
class Noop:
    """NOOP (RFC 5321 §4.1.1.9); any argument is ignored."""


@dataclass(frozen=True, slots=True)
class Vrfy:
    """VRFY (RFC 5321 §4.1.1.6); the argument as sent."""

    arg: str


@dataclass(frozen=True, slots=True)
class Help:
    """HELP (RFC 5321 §4.1.1.8); ``arg`` may be empty."""

    arg: str


@dataclass(frozen=True, slots=True)
class Quit:
    """QUIT (RFC 5321 §4.1.1.10)."""


@dataclass(frozen=True, slots=True)
class StartTls:
    """STARTTLS (RFC 3207 §4)."""


@dataclass(frozen=True, slots=True)
class Auth:
    """AUTH (RFC 4954 §4): mechanism upper-cased; ``initial`` as sent ("=" means empty)."""

    mechanism: str
    initial: str | None


Command: TypeAlias = (
    Ehlo | MailFrom | RcptTo | Data | Bdat | Rset | Noop | Vrfy | Help | Quit | StartTls | Auth
)


def xtext_decode(s: str) -> str:
    """Decode RFC 3461 §4 xtext (``+HH`` escapes; lower-case hex tolerated); octets must be UTF-8."""
    if not _XTEXT.fullmatch(s):
        raise _param_error("bad xtext")
    raw = _XTEXT_HEX.sub(lambda m: bytes([int(m[1], 16)]), s.encode("ascii"))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _param_error("bad xtext") from None


# ---------------------------------------------------------------- paths


def _valid_domain(domain: str) -> bool:
    """Domain or address-literal (RFC 5321 §4.1.2, §4.1.3; RFC 6531 U-labels)."""
    if domain.startswith("["):
        if not domain.endswith("]"):
            return False
        inner = domain[1:-1]
        try:
            if inner[:5].lower() == "ipv6:":
                if "%" in inner:  # a zone id is not part of IPv6-address-literal
                    return False
                ipaddress.IPv6Address(inner[5:])
            else:
                ipaddress.IPv4Address(inner)
        except ValueError:
            return False
        return True
    if not domain or len(domain.encode()) > 255:
        return False
    return all(
        _LABEL.fullmatch(label) and (not label.isascii() or len(label) <= 63) for label in domain.split(".")
    )


def _canonical_domain(domain: str) -> str:
    if domain[:6].lower() == "[ipv6:":
        return "[IPv6:" + domain[6:].lower()
    return domain.lower()


def _mailbox(mailbox: str) -> Address:
    local, at, domain = mailbox.rpartition("@")
    if not at:
        raise _address_error("address must be local-part@domain")
    if not _valid_domain(domain):
        raise _address_error("bad domain in address")
    if _DOT_STRING.fullmatch(local):
        return Address(local, _canonical_domain(domain))
    m = _QUOTED.fullmatch(local)
    if m is None:
        raise _address_error("bad local part in address")
    return Address(_QUOTED_PAIR.sub(r"\1", m[1]), _canonical_domain(domain))


def _parse_path(s: str, usage: str, *, null_ok: bool) -> tuple[Address | None, bool, str]:
    """Parse ``<path>`` at the start of ``s``; return (address, bare postmaster, parameter text)."""
    m = _PATH.match(s)
    if m is None or (m.end() < len(s) and s[m.end()] != " "):
        raise _syntax(usage)
    inner, rest = m[1], s[m.end() :]
    if len(m[0].encode()) > _MAX_PATH:
        raise _syntax("path too long")
    if not inner:
        if null_ok:
            return None, False, rest
        raise _address_error("null path not allowed here")
    if inner.startswith("@"):
        # RFC 5321 §3.3, §4.1.2: source routes are accepted and ignored (A-d-l ":" Mailbox).
        route, colon, inner = inner.partition(":")
        if not colon or not all(h.startswith("@") and _valid_domain(h[1:]) for h in route.split(",")):
            raise _address_error("bad source route")
    if not null_ok and inner.lower() == "postmaster":
        return Address("postmaster", ""), True, rest
    return _mailbox(inner), False, rest


# ---------------------------------------------------------------- parameters


def _words(text: str) -> list[str]:
    # Split on SP only: str.split() would also split on Unicode spaces inside UTF-8 values.
    return [w for w in text.split(" ") if w]


# RFC 1870 §3 SIZE, RFC 6152 / RFC 3030 BODY, RFC 6531 §3.4 SMTPUTF8 (no value), RFC 3461 §4.3-4.4
# RET and ENVID (<= 100 chars), RFC 4954 §5 AUTH (xtext or "<>"), RFC 3461 §4.1-4.2 NOTIFY (NEVER is
# exclusive) and ORCPT (<= 500 chars; the utf-8 type of RFC 6533 §3 also carries raw UTF-8); RFC 4865
# HOLDFOR and HOLDUNTIL.
# The pattern None means "no value"; True means the value is an enumeration, returned upper-cased.
_X = _XTEXT.pattern
_DSN_EVENT = "(?:SUCCESS|FAILURE|DELAY)"
_Table = dict[str, tuple[re.Pattern[str] | None, bool]]
_MAIL_PARAMS: _Table = {
    "SIZE": (re.compile(r"[0-9]{1,20}"), False),
    "BODY": (re.compile(r"(?i:7BIT|8BITMIME|BINARYMIME)"), True),
    "SMTPUTF8": (None, False),
    "RET": (re.compile(r"(?i:FULL|HDRS)"), True),
    "ENVID": (re.compile(f"(?=.{{1,100}}\\Z){_X}"), False),
    "AUTH": (re.compile(f"<>|(?=.){_X}"), False),
    # RFC 4865 §4 FUTURERELEASE: seconds to wait, or an RFC 3339 date-time
    "HOLDFOR": (re.compile(r"[0-9]{1,10}"), False),
    "HOLDUNTIL": (re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
                             r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"), False),
}
_RCPT_PARAMS: _Table = {
    "NOTIFY": (re.compile(f"(?i:NEVER|{_DSN_EVENT}(?:,{_DSN_EVENT})*)"), True),
    "ORCPT": (
        re.compile(
            f"(?=.{{1,500}}\\Z)(?:(?i:utf-8);(?=.){_XTEXT_UTF8.pattern}|{_ADDR_TYPE.pattern};(?=.){_X})"
        ),
        False,
    ),
}


def _parse_params(text: str, table: _Table) -> dict[str, str | None]:
    """esmtp-param list (RFC 5321 §4.1.2); keywords upper-cased, enum values upper-cased."""
    params: dict[str, str | None] = {}
    for item in _words(text):
        keyword, eq, value = item.partition("=")
        if not _KEYWORD.fullmatch(keyword):
            raise _param_error("bad parameter keyword")
        keyword = keyword.upper()
        if keyword not in table:
            raise _param_error(f"unrecognised parameter {keyword}")
        if keyword in params:
            raise _syntax(f"duplicate parameter {keyword}")
        pattern, enum = table[keyword]
        if not eq and pattern is None:
            params[keyword] = None
        elif eq and pattern and _ESMTP_VALUE.fullmatch(value) and pattern.fullmatch(value):
            params[keyword] = value.upper() if enum else value
        else:
            raise _param_error(f"bad {keyword} value")
        if keyword in _DSN_TEXT:
            _check_printable(keyword, value.partition(";")[2] if keyword == "ORCPT" else value)
    return params


_DSN_TEXT = ("ENVID", "ORCPT")  # xtext that a DSN will carry as a header field (RFC 3464 §2.2.1, §2.3.1)
_UNICODE_ESCAPE = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")  # RFC 6533 §3 EmbeddedUnicodeChar


def _check_printable(keyword: str, value: str) -> None:
    """Decoded ENVID/ORCPT text must be printable (RFC 3461 §4.2, §4.4): an escaped CR LF would
    otherwise become a forged field in the DSN that carries it back."""
    raw = _XTEXT_HEX.sub(lambda m: bytes([int(m[1], 16)]), value.encode("utf-8"))
    try:
        text = _UNICODE_ESCAPE.sub(lambda m: chr(min(int(m[1], 16), 0x10FFFF)), raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _param_error(f"bad {keyword} value") from None
    if not text.isprintable():
        raise _syntax(f"control characters in {keyword}")


# ---------------------------------------------------------------- commands


def _no_args(cmd: Command, verb: str) -> Callable[[str], Command]:
    def parse(rest: str) -> Command:
        if rest:
            raise _syntax(f"{verb} takes no arguments")
        return cmd

    return parse


def _required(verb: str, make: Callable[[str], Command]) -> Callable[[str], Command]:
    def parse(rest: str) -> Command:
        if not rest:
            raise _syntax(f"{verb} requires an argument")
        return make(rest)

    return parse


def _mail(rest: str) -> Command:
    usage = "Syntax: MAIL FROM:<address>"
    if rest[:5].upper() != "FROM:":
        raise _syntax(usage)
    address, _, params = _parse_path(rest[5:].lstrip(" "), usage, null_ok=True)
    return MailFrom(address, _parse_params(params, _MAIL_PARAMS))


def _rcpt(rest: str) -> Command:
    usage = "Syntax: RCPT TO:<address>"
    if rest[:3].upper() != "TO:":
        raise _syntax(usage)
    address, postmaster, params = _parse_path(rest[3:].lstrip(" "), usage, null_ok=False)
    if address is None:  # unreachable: null_ok=False refuses "<>"
        raise _address_error("null path not allowed here")
    return RcptTo(address, _parse_params(params, _RCPT_PARAMS), postmaster)


def _bdat(rest: str) -> Command:
    m = _BDAT.fullmatch(rest)
    if m is None:
        raise _syntax("Syntax: BDAT <size> [LAST]")
    return Bdat(int(m[1]), m[2] is not None)


def _auth(rest: str) -> Command:
    m = _AUTH.fullmatch(rest)
    if m is None:
        raise _syntax("Syntax: AUTH mechanism [initial-response]")
    return Auth(m[1].upper(), m[2])


_VERBS: dict[bytes, Callable[[str], Command]] = {
    # The EHLO/HELO argument is kept as sent: whether it is a valid name is a policy check.
    b"EHLO": _required("EHLO", lambda arg: Ehlo(arg, True)),
    b"HELO": _required("HELO", lambda arg: Ehlo(arg, False)),
    b"MAIL": _mail,
    b"RCPT": _rcpt,
    b"DATA": _no_args(Data(), "DATA"),
    b"BDAT": _bdat,
    b"RSET": _no_args(Rset(), "RSET"),
    b"NOOP": lambda rest: Noop(),
    b"VRFY": _required("VRFY", Vrfy),
    b"HELP": Help,
    b"QUIT": _no_args(Quit(), "QUIT"),
    b"STARTTLS": _no_args(StartTls(), "STARTTLS"),
    b"AUTH": _auth,
}


def parse_command(line: bytes) -> Command:
    """Parse one SMTP command line given without its CRLF (RFC 5321 §4.1.1, §4.1.2).

    Verbs are case-insensitive; trailing spaces and a space after ``FROM:`` /
    ``TO:`` are tolerated. The line must be valid UTF-8 without control
    characters (non-ASCII only makes sense in paths and values, RFC 6531 §3.3).
    """
    line = line.rstrip(b" ")
    verb, _, rest = line.partition(b" ")
    handler = _VERBS.get(verb.upper())
    if handler is None:
        raise SmtpSyntaxError(500, "5.5.1", "unknown command")
    if _CONTROLS.search(rest):
        raise _syntax("control characters in command")
    try:
        text = rest.decode("utf-8").lstrip(" ")
    except UnicodeDecodeError:
        raise _syntax("invalid UTF-8 in command") from None
    return handler(text)


# ---------------------------------------------------------------- DATA

_CR, _LF, _DOT = 0x0D, 0x0A, 0x2E


class DataDecoder:
    """Streaming decoder for the bytes after ``354`` (RFC 5321 §4.1.1.4, §4.5.2).

    The message ends only at CRLF "." CRLF, the first CRLF possibly being the
    start of data. A dot line ended by a bare LF or bare CR never ends it and
    passes through unchanged (SMTP smuggling, CVE-2023-51764). A leading dot
    is removed only on a line that follows CRLF, and only when the dot is not
    itself followed by CR or LF. The CRLF before the final dot is body.

    Attributes: ``size`` octets of body so far; ``too_big`` once size exceeds
    ``max_size`` (later bodies come back empty, consumption continues);
    ``bare_lf`` if any LF not preceded by CR was seen; ``longest_line``
    octets of the longest body line (lines split at LF, excluding CRLF);
    ``done`` once the terminator was consumed.
    """

    def __init__(self, max_size: int, host: str = "") -> None:
        self.meter = BodyMeter(max_size, host)
        self.done = False
        self._carry = b""  # "." or ".\r" at a line start, waiting for the byte that decides
        self._bol = True  # next input byte starts a line that follows CRLF (or starts the data)
        self._in_cr = False  # last consumed input byte was CR (a CRLF may straddle chunks)

    def feed(self, chunk: bytes) -> tuple[bytes, bytes | None]:
        """Consume ``chunk``; return (body bytes, None) or, at the end, (body bytes, bytes after it)."""
        if self.done:
            raise RuntimeError("DataDecoder fed after end of data")
        buf = self._carry + chunk if self._carry else chunk
        if not buf:
            return b"", None
        self._carry = b""
        n = len(buf)
        pieces: list[bytes] = []
        rest: bytes | None = None
        i = 0
        if self._in_cr and buf[0] == _LF:
            pieces.append(b"\n")
            i, self._bol = 1, True
        self._in_cr = False
        next_cr = next_lf = -1  # next b"\r\n.\r" / b"\r\n.\n" at or after i; n when there is none
        while i < n:
            if self._bol:
                if buf[i] == _DOT:
                    if n - i < 2 or (buf[i + 1] == _CR and n - i < 3):
                        self._carry = buf[i:]
                        break
                    if buf[i + 1] == _CR and buf[i + 2] == _LF:
                        rest = buf[i + 3 :]
                        self.done = True
                        break
                    if buf[i + 1] not in (_CR, _LF):
                        i += 1  # dot-unstuffing; a dot before a bare CR/LF is kept as sent
                self._bol = False
            # Until the next dot line whose dot is followed by CR or LF (the terminator is one), every
            # CRLF "." is a stuffed dot: one C-level replace unstuffs the stretch. The positions are
            # cached so each pattern is searched once per chunk, whatever an attacker sends.
            if next_cr < i:
                found = buf.find(b"\r\n.\r", i)
                next_cr = found if found >= 0 else n
            if next_lf < i:
                found = buf.find(b"\r\n.\n", i)
                next_lf = found if found >= 0 else n
            end = min(next_cr, next_lf) + 2
            if end > n:  # none in this chunk: a final CRLF "." waits for the byte after it
                end = n - 1 if n - i >= 3 and buf.endswith(b"\r\n.") else n
            pieces.append(buf[i:end].replace(b"\r\n.", b"\r\n"))
            if end < n:
                i, self._bol = end, True
                continue
            self._bol = buf.endswith(b"\r\n")
            self._in_cr = buf.endswith(b"\r")
            break
        out = b"".join(pieces)
        self.meter.feed(out)
        return (b"" if self.meter.too_big else out), rest

    @property
    def size(self) -> int:
        return self.meter.size

    @property
    def too_big(self) -> bool:
        return self.meter.too_big

    @property
    def bare_lf(self) -> bool:
        return self.meter.bare_lf

    @property
    def longest_line(self) -> int:
        return self.meter.longest_line
