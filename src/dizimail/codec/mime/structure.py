"""MIME structure of a stored message as a tree of parts with byte offsets.

:func:`parse_structure` finds the parts of an RFC 5322 message by RFC 2045 /
RFC 2046 rules without decoding or copying bodies: each :class:`Part` records
where its header section and body lie in the raw bytes, so that IMAP FETCH
can return any section by slicing (RFC 3501 §6.4.5) and BODYSTRUCTURE can
count octets and lines of the encoded body (RFC 3501 §7.4.2).

Boundaries are found by RFC 2046 §5.1.1: a delimiter is a line that starts
with ``--`` and the boundary, optionally followed by ``--`` (the close
delimiter) and white space; the line break before it belongs to the
delimiter, not to the part. A part is cut out by its parent's delimiters
before its own are looked for, so an outer boundary always ends an inner part
whose close delimiter is missing. A missing close delimiter lets the last
part run to the end of its parent.

Hostile input must cost linear time: nesting deeper than ``max_depth`` is not
descended (the part keeps its type but gets no children) and parsing stops
adding parts after ``max_parts``. Nothing here raises on bad input.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from dizimail.codec.mime.charsets import decode_header_bytes
from dizimail.codec.mime.headers import HeaderField, field_value, split_header
from dizimail.codec.mime.params import (
    decode_params,
    parse_content_type,
    parse_disposition,
    parse_language,
    strip_comments,
)
from dizimail.codec.mime.transfer import IDENTITY

MAX_DEPTH = 50
MAX_PARTS = 10_000


@dataclass(slots=True)
class Part:
    """One MIME entity (RFC 2045 §2.4) and where it lies in the raw message.

    ``raw[header_start:header_end]`` holds its header fields,
    ``raw[header_start:body_start]`` the header section with the blank line,
    and ``raw[body_start:body_end]`` its encoded body. A multipart has one child
    per body part (RFC 2046 §5.1); a message/rfc822 entity whose body is not
    transfer-encoded has the encapsulated message as its only child, and that
    message's own children are its body parts (RFC 2046 §5.2.1).
    """

    header_start: int
    header_end: int
    body_start: int
    body_end: int
    content_type: str = "text/plain"
    """``type/subtype`` in lower case (RFC 2045 §5.1)."""
    params: dict[str, str] = field(default_factory=dict)
    """Content-Type parameters, names lower-case, RFC 2231 values decoded."""
    content_id: str | None = None
    description: str | None = None
    encoding: str = "7bit"
    """Content-Transfer-Encoding token in lower case (RFC 2045 §6.1)."""
    disposition: str | None = None
    disposition_params: dict[str, str] = field(default_factory=dict)
    language: tuple[str, ...] = ()
    location: str | None = None
    md5: str | None = None
    children: list[Part] = field(default_factory=list)

    @property
    def maintype(self) -> str:
        return self.content_type.partition("/")[0]

    @property
    def subtype(self) -> str:
        return self.content_type.partition("/")[2]

    @property
    def is_multipart(self) -> bool:
        return self.maintype == "multipart"

    @property
    def message(self) -> Part | None:
        """The encapsulated message of a parsed message/rfc822 part, else ``None``."""
        if self.content_type == "message/rfc822" and self.children:
            return self.children[0]
        return None

    @property
    def size(self) -> int:
        """Octets of the encoded body."""
        return self.body_end - self.body_start

    def walk(self) -> Iterator[Part]:
        """This part and all parts below it, depth first in message order."""
        stack: list[Part] = [self]
        while stack:
            part = stack.pop()
            yield part
            stack.extend(reversed(part.children))


class _Budget:
    __slots__ = ("left", "max_depth")

    def __init__(self, max_parts: int, max_depth: int) -> None:
        self.left = max_parts
        self.max_depth = max_depth


def parse_structure(raw: bytes, *, max_depth: int = MAX_DEPTH, max_parts: int = MAX_PARTS) -> Part:
    """Parse the MIME structure of ``raw`` (RFC 2045, RFC 2046); never raises.

    The root part is the message itself: its header section is the message
    header and its children are the body parts, if any.
    """
    return _parse_part(raw, 0, len(raw), "text/plain", 0, _Budget(max(max_parts, 1), max_depth))


def _parse_part(raw: bytes, start: int, end: int, default: str, depth: int, budget: _Budget) -> Part:
    block = split_header(raw, start, end)
    part = Part(start, block.end, block.body_start, end)
    budget.left -= 1
    boundary = _apply_fields(raw, block.fields, part, default)
    if depth >= budget.max_depth:
        return part
    if part.is_multipart:
        if boundary:
            child_default = "message/rfc822" if part.subtype == "digest" else "text/plain"
            _split_multipart(raw, part, boundary, child_default, depth, budget)
    elif part.content_type == "message/rfc822" and part.encoding in IDENTITY and budget.left > 0:
        # RFC 2046 §5.2.1 allows only identity encodings here; an encoded
        # message/rfc822 body has no offsets to give and stays a leaf.
        part.children.append(_parse_part(raw, part.body_start, end, "text/plain", depth + 1, budget))
    return part


def _apply_fields(raw: bytes, fields: list[HeaderField], part: Part, default: str) -> bytes:
    """Fill the MIME fields of ``part`` (first occurrence wins); return the boundary, if any."""
    seen: set[str] = set()
    boundary = b""
    content_type: tuple[str, str, list[tuple[str, str]]] | None = None
    for header in fields:
        name = header.name
        if not name.startswith("content-") or name in seen:
            continue
        seen.add(name)
        value = field_value(raw, header)
        if name == "content-type":
            content_type = parse_content_type(value.decode("latin-1"))
        elif name == "content-transfer-encoding":
            part.encoding = strip_comments(value.decode("latin-1")).strip().lower() or "7bit"
        elif name == "content-disposition":
            disposition = parse_disposition(value.decode("latin-1"))
            if disposition is not None:
                part.disposition = disposition[0]
                part.disposition_params = decode_params(disposition[1])
        elif name == "content-language":
            part.language = parse_language(decode_header_bytes(value))
        else:
            _apply_text_field(part, name, value)
    if content_type is None:
        part.content_type = default
        if default == "text/plain":
            part.params = {"charset": "us-ascii"}  # RFC 2045 §5.2
    else:
        part.content_type = f"{content_type[0]}/{content_type[1]}"
        part.params = decode_params(content_type[2])
        raw_boundary = next((value for key, value in content_type[2] if key == "boundary"), None)
        if raw_boundary is not None:
            boundary = raw_boundary.encode("latin-1")  # byte for byte, as it is in the body
        else:  # RFC 2231 form, "boundary*=''..."
            boundary = part.params.get("boundary", "").encode("utf-8")
    return boundary


def _apply_text_field(part: Part, name: str, value: bytes) -> None:
    text = decode_header_bytes(value) or None
    if name == "content-id":
        part.content_id = text
    elif name == "content-description":
        part.description = text
    elif name == "content-location":
        part.location = text
    elif name == "content-md5":
        part.md5 = text


def _split_multipart(raw: bytes, part: Part, boundary: bytes, default: str, depth: int, budget: _Budget) -> None:
    content_start: int | None = None  # start of the body part being read, after a delimiter
    for line_start, after, close in _delimiters(raw, part.body_start, part.body_end, boundary):
        if content_start is not None:
            if budget.left <= 0:  # parts beyond the limit stay unlisted bytes of this body
                return
            stop = max(line_start, content_start)
            part.children.append(_parse_part(raw, content_start, stop, default, depth + 1, budget))
        if close:
            return
        content_start = after
    if content_start is not None and budget.left > 0:  # no close delimiter: the last part runs to the end
        part.children.append(_parse_part(raw, content_start, part.body_end, default, depth + 1, budget))


def _delimiters(raw: bytes, start: int, end: int, boundary: bytes) -> Iterator[tuple[int, int, bool]]:
    """Delimiter lines of ``boundary`` in ``raw[start:end]`` (RFC 2046 §5.1.1).

    Yields ``(line_start, after, close)``: where the delimiter begins, counting
    the line break before it, where the next line starts, and whether it is
    the close delimiter.
    """
    dash = b"--" + boundary
    needle = b"\n" + dash
    pos = start
    candidate = start if raw.startswith(dash, start, end) else -1
    while True:
        if candidate < 0:
            found = raw.find(needle, pos, end)
            if found < 0:
                return
            candidate = found + 1
        rest_start = candidate + len(dash)
        newline = raw.find(b"\n", rest_start, end)
        line_stop = end if newline < 0 else newline
        rest = raw[rest_start:line_stop]
        close = rest.startswith(b"--")
        if not (rest[2:] if close else rest).strip(b" \t\r"):
            line_start = candidate
            if candidate > start:
                line_start -= 1
                if line_start > start and raw[line_start - 1] == 0x0D:
                    line_start -= 1
            yield line_start, (end if newline < 0 else newline + 1), close
        pos = rest_start
        candidate = -1


def resolve(root: Part, path: tuple[int, ...]) -> Part | None:
    """The part that an IMAP section part number names (RFC 3501 §6.4.5), or ``None``.

    ``()`` is the message. A multipart's parts are numbered from 1; a message
    that is not multipart has its body as part 1; the numbers after a
    message/rfc822 part's number address the encapsulated message's parts.
    """
    node = root
    as_message = True
    for number in path:
        while True:
            if node.is_multipart:
                if not 1 <= number <= len(node.children):
                    return None
                node, as_message = node.children[number - 1], False
                break
            if as_message:
                if number != 1:
                    return None
                as_message = False
                break
            embedded = node.message
            if embedded is None:
                return None
            node, as_message = embedded, True
    return node
