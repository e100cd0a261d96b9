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

# RFC 5322 §3.6.8 field name (printable US-ASCII but colon), with the obsolete
# white space before the colon of §4.5.
_FIELD_NAME = re.compile(rb"([^\x00-\x20\x7f:]+)[ \t]*:")
_LINE_BREAK = re.compile(rb"\r?\n")
_CR = 0x0D
_LF = 0x0A
_WSP = (0x20, 0x09)


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One header field (RFC 5322 §2.2): ``raw[start:end]`` is the field with its line ending(s)."""

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

    Linear in the size of the header section; never raises.
    """
    stop = len(raw) if end is None else min(end, len(raw))
    fields: list[HeaderField] = []
    pos = start
    current: tuple[str, int, int] | None = None  # name, start, value_start
    while pos < stop:
        newline = raw.find(b"\n", pos, stop)
        line_end = stop if newline < 0 else newline + 1
        first = raw[pos]
        if first == _LF or (first == _CR and pos + 1 < stop and raw[pos + 1] == _LF):
            _close(fields, current, pos)
            return HeaderBlock(fields, pos, line_end)
        if first in _WSP and current is not None:
            pos = line_end
            continue
        match = _FIELD_NAME.match(raw, pos, line_end)
        _close(fields, current, pos)
        if match is None:
            return HeaderBlock(fields, pos, pos)
        current = (match.group(1).decode("latin-1").lower(), pos, match.end())
        pos = line_end
    _close(fields, current, stop)
    return HeaderBlock(fields, stop, stop)


def _close(fields: list[HeaderField], current: tuple[str, int, int] | None, end: int) -> None:
    if current is not None:
        fields.append(HeaderField(current[0], current[1], current[2], end))


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
