"""Small builders for IMAP responses (RFC 9051 §4, §7; RFC 3501 §9 for IMAP4rev1).

Everything returns bytes ready for the wire except the few helpers that
produce text to embed (:func:`sequence_set_string`, :func:`ordered_set_string`, :func:`imap_date`).
Strings are sent quoted when that is safe and as literals otherwise, so no
client-supplied value can end a response line early.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable

from dizimail.codec.imap.seqset import SequenceSet
from dizimail.codec.imap.utf7 import encode_mutf7

_QUOTABLE = re.compile(rb"[\x20-\x7e]*")  # no CR, LF, NUL or 8-bit: those need a literal
_QUOTABLE_UTF8 = re.compile(rb"(?:[\x20-\x7e]|[\xc2-\xf4][\x80-\xbf]{1,3})*")  # RFC 9051 §9 quoted with UTF8-2..4
_ATOM = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\]+')  # ASTRING-CHAR: "]" allowed
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _bytes(s: str | bytes) -> bytes:
    return s.encode("utf-8") if isinstance(s, str) else s


def literal(data: bytes, *, binary: bool = False) -> bytes:
    """``{n}CRLF data`` (RFC 9051 §4.3), or ``~{n}`` literal8 for BINARY (RFC 3516 §4.2)."""
    return b"%s{%d}\r\n%s" % (b"~" if binary else b"", len(data), data)


def quote(s: str | bytes, *, utf8: bool = False) -> bytes:
    """A quoted string when safe, else a literal (RFC 9051 §4.3).

    With ``utf8`` (the client enabled UTF8=ACCEPT or IMAP4rev2, RFC 9051 §9
    ``quoted``) well-formed multi-octet UTF-8 may stay inside quotes.
    """
    raw = _bytes(s)
    if len(raw) <= 1024 and (_QUOTABLE_UTF8 if utf8 else _QUOTABLE).fullmatch(raw) is not None:
        if utf8 and not raw.isascii():
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return literal(raw)
        return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return literal(raw)


def nstring(b: str | bytes | None, *, utf8: bool = False) -> bytes:
    """``NIL`` or a string (RFC 9051 §9 ``nstring``)."""
    return b"NIL" if b is None else quote(b, utf8=utf8)


def astring(s: str | bytes, *, utf8: bool = False) -> bytes:
    """An atom when possible, else a string (RFC 9051 §9 ``astring``); ``NIL`` is quoted to stay unambiguous."""
    raw = _bytes(s)
    if _ATOM.fullmatch(raw) is not None and raw.upper() != b"NIL":
        return raw
    return quote(raw, utf8=utf8)


def mailbox(name: str, *, utf8: bool = False) -> bytes:
    """A mailbox name for a response: modified UTF-7 (RFC 3501 §5.1.3) unless ``utf8`` (RFC 9051 §5.1)."""
    return astring(name if utf8 else encode_mutf7(name), utf8=utf8)


def flag_list(flags: Iterable[str]) -> bytes:
    """``(\\Seen \\Flagged)`` (RFC 9051 §9 ``flag-list``); flags are atoms already."""
    return b"(" + " ".join(flags).encode("ascii") + b")"


def sequence_set_string(numbers: Iterable[int]) -> str:
    """Compress numbers into ``1:3,5,7:9`` (RFC 9051 §9 ``sequence-set``); empty input gives ``""``."""
    return str(SequenceSet.of(list(numbers)))


def ordered_set_string(numbers: list[int]) -> str:
    """A sequence-set that keeps the given order (ESORT results, RFC 5267 §3.2): only ascending
    runs become ranges, so ``5,3,4,2`` is ``5,3:4,2``; empty input gives ``""``."""
    out: list[str] = []
    for n in numbers:
        if out and (prev := out[-1].rpartition(":")[2]).isdigit() and n == int(prev) + 1:
            start = out[-1].partition(":")[0]
            out[-1] = f"{start}:{n}"
        else:
            out.append(str(n))
    return ",".join(out)


def imap_date(ts: float, offset_minutes: int = 0) -> str:
    """INTERNALDATE text (RFC 9051 §9 ``date-time``) without its quotes: ``28-Nov-2026 16:13:07 +0000``.

    The caller adds the DQUOTEs (``f'INTERNALDATE "{imap_date(ts)}"'``).
    ``ts`` is a POSIX timestamp, shown at ``offset_minutes`` east of UTC;
    the day is zero-padded (``2DIGIT``) rather than space-padded.
    """
    zone = _dt.timezone(_dt.timedelta(minutes=offset_minutes))
    t = _dt.datetime.fromtimestamp(int(ts), zone)
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return (
        f"{t.day:02d}-{_MONTHS[t.month - 1]}-{t.year:04d} {t.hour:02d}:{t.minute:02d}:{t.second:02d} "
        f"{sign}{hours:02d}{minutes:02d}"
    )


def untagged(text: str | bytes) -> bytes:
    """``* text CRLF`` (RFC 9051 §7)."""
    return b"* " + _bytes(text) + b"\r\n"


def tagged(tag: str, status: str, text: str, code: str | None = None) -> bytes:
    """``tag OK|NO|BAD [code] text CRLF`` (RFC 9051 §7.1)."""
    prefix = f"[{code}] " if code else ""
    return f"{tag} {status} {prefix}{text}\r\n".encode()


def continuation(text: str = "Ready") -> bytes:
    """``+ text CRLF`` (RFC 9051 §7.5)."""
    return f"+ {text}\r\n".encode()
