"""Header sections split into fields with byte offsets (RFC 5322 §2.2, §3.5; RFC 2045 §3).

The splitter never copies the message: it records where each field starts,
where its value starts (after the colon) and where it ends (after the line
ending of its last continuation line), so that IMAP ``HEADER.FIELDS`` can
return fields byte for byte. Lines end at LF; a CR before it is optional, so
bare-LF mail degrades gracefully.

The header section ends at the first empty line (RFC 5322 §2.1). A line that
is neither a field nor a continuation ends it as well, and that line starts
the body: a MIME part that lacks the blank line after its header fields, or
lacks header fields altogether, keeps its text as body (RFC 2046 §5.1.1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

# RFC 5322 §3.6.8 field name (printable US-ASCII but colon), with the obsolete
# white space before the colon of §4.5.
# A whole field: its name, the colon, the rest of the line and every continuation line (a line
# starting with white space). Deterministic: after the name nothing can fail, so it never backtracks.
_FIELD = re.compile(rb"([^\x00-\x20\x7f:]+)[ \t]*:()[^\n]*(?:\n[ \t][^\n]*)*\n?")
_LINE_BREAK = re.compile(rb"\r?\n")
_CR = 0x0D
_LF = 0x0A


class HeaderField(NamedTuple):
    """One header field (RFC 5322 §2.2): ``raw[start:end]`` is the field with its line ending(s).

    A named tuple rather than a frozen dataclass: FETCH of header fields splits every header it
    returns, and a tuple is built several times faster."""

    name: str
    """Lower-case field name."""
    start: int
    value_start: int
    """Offset just after the colon."""
    end: int


@dataclass(frozen=True, slots=True)
class HeaderBlock:
    """A split header section: its fields, where the fields end and where the body starts."""

    fields: list[HeaderField]
    end: int
    """Offset after the last field, i.e. where the blank line (if any) starts."""
    body_start: int
    """Offset after the blank line; equals ``end`` when there is none."""


def split_header(raw: bytes, start: int = 0, end: int | None = None) -> HeaderBlock:
    """Split the header section that begins at ``start`` and lies before ``end``.

    Linear in the size of the header section; never raises. One match per field, its
    continuation lines included (FETCH of header fields splits every header it returns).
    """
    stop = len(raw) if end is None else min(end, len(raw))
    fields: list[HeaderField] = []
    pos = start
    match = _FIELD.match
    while pos < stop:
        first = raw[pos]
        if first == _LF or (first == _CR and pos + 1 < stop and raw[pos + 1] == _LF):
            return HeaderBlock(fields, pos, raw.index(b"\n", pos, stop) + 1)
        m = match(raw, pos, stop)
        if m is None:  # neither a field nor a continuation: the body starts here
            return HeaderBlock(fields, pos, pos)
        fields.append(HeaderField(m.group(1).decode("latin-1").lower(), pos, m.start(2), m.end()))
        pos = m.end()
    return HeaderBlock(fields, stop, stop)


def unfold(value: bytes) -> bytes:
    """Unfold a field value (RFC 5322 §2.2.3) and trim the white space around it."""
    return _LINE_BREAK.sub(b"", value).strip(b" \t\r")


def field_value(raw: bytes, field: HeaderField) -> bytes:
    """The unfolded raw value of ``field``."""
    return unfold(raw[field.value_start : field.end])


def first_value(raw: bytes, fields: list[HeaderField], name: str) -> bytes | None:
    """The unfolded raw value of the first field called ``name`` (lower-case), or ``None``."""
    for field in fields:
        if field.name == name:
            return field_value(raw, field)
    return None


def field_bytes(raw: bytes, field: HeaderField) -> bytes:
    """The field as it stands in the message, ending in a line break (RFC 3501 §6.4.5 HEADER.FIELDS)."""
    data = raw[field.start : field.end]
    return data if data.endswith(b"\n") else data + b"\r\n"
