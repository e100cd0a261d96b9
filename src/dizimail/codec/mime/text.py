"""Text of a stored message for search indexing and SEARCH evaluation (RFC 3501 §6.4.4).

SEARCH matches strings against decoded text, not against wire bytes: header
values have their RFC 2047 encoded words decoded, raw 8-bit values (RFC 6532)
are read as UTF-8 or, for older Chinese mail, GB18030; bodies are
transfer-decoded and charset-decoded, HTML is reduced to its text. All of it
is lenient and never raises; a hostile message yields less text, not an
error.
"""

from __future__ import annotations

import html
import re

from dizimail.codec.mime.address import Group, Mailbox, parse_addresses
from dizimail.codec.mime.charsets import decode, decode_header_bytes, decode_words
from dizimail.codec.mime.headers import field_value, split_header
from dizimail.codec.mime.structure import Part, parse_structure
from dizimail.codec.mime.transfer import decode_transfer

_TEXT_TYPES = ("text/plain", "text/html")
_HTML_BLOCK = re.compile(r"<!--|<(script|style)\b", re.IGNORECASE)
_HTML_BLOCK_END = {
    "script": re.compile(r"</script\s*>", re.IGNORECASE),
    "style": re.compile(r"</style\s*>", re.IGNORECASE),
}
_HTML_BREAK = re.compile(r"<(?:br|p|div|tr|li|h[1-6]|/p|/div|/tr|/li|/h[1-6]|/table)\b[^<>]*>", re.IGNORECASE)
_HTML_TAG = re.compile(r"<[^<>]*>")  # [^<>] keeps a run of unclosed "<" linear
_BLANKS = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
# One blank run where no quote stands: "\s*[\"']?\s*" split a run of blanks between two \s* in every way
# (quadratic: 4 KiB of blanks took 0.3 s, and each HTML part pays it).
_META_CHARSET = re.compile(rb"<meta\b[^<>]{0,300}?charset\s*=\s*(?:[\"']\s*)?([-\w.:]+)", re.IGNORECASE)


def header_text(raw: bytes) -> dict[str, list[str]]:
    """Header fields of the message, lower-case names to decoded values in message order.

    Values are unfolded (RFC 5322 §2.2.3), raw 8-bit bytes decoded (RFC 6532
    §3.2, else GB18030, else Latin-1) and encoded words decoded (RFC 2047 §6).
    """
    result: dict[str, list[str]] = {}
    for field in split_header(raw).fields:
        value = decode_words(decode_header_bytes(field_value(raw, field)))
        result.setdefault(field.name, []).append(value)
    return result


def header_raw_text(raw: bytes) -> dict[str, list[str]]:
    """As :func:`header_text`, but encoded words left as they are: what address lists are parsed from
    (RFC 2047 §6.2: decoded after parsing, so a word that decodes to a comma or a colon stays in its name)."""
    result: dict[str, list[str]] = {}
    for field in split_header(raw).fields:
        result.setdefault(field.name, []).append(decode_header_bytes(field_value(raw, field)))
    return result


def addresses(value: str) -> list[tuple[str, str]]:
    """``(display name, address)`` pairs of an address-list (RFC 5322 §3.4); groups flattened.

    Names have their encoded words decoded; an address without a domain is
    the bare local part.
    """
    pairs: list[tuple[str, str]] = []
    for item in parse_addresses(value):
        members = item.members if isinstance(item, Group) else (item,)
        pairs.extend(_pair(member) for member in members if member.local)
    return pairs


def _pair(mailbox: Mailbox) -> tuple[str, str]:
    name = decode_words(mailbox.name or "")
    address = f"{mailbox.local}@{mailbox.domain}" if mailbox.domain else (mailbox.local or "")
    return name, address


def body_text(raw: bytes, limit: int = 1_000_000, *, structure: Part | None = None) -> str:
    """Text of the text/plain and text/html parts, decoded, joined by newlines, at most ``limit`` chars.

    Parts are transfer-decoded (RFC 2045 §6) and charset-decoded (RFC 2046
    §4.1.2; no charset: UTF-8, GB18030, Latin-1); HTML loses its tags and has
    its entities replaced. Parts inside message/rfc822 parts count too. Work
    is bounded by ``limit``: no more of a part is decoded than can be kept.
    """
    root = parse_structure(raw) if structure is None else structure
    pieces: list[str] = []
    left = limit
    for part in root.walk():
        if left <= 0:
            break
        if part.content_type not in _TEXT_TYPES or part.children:
            continue
        text = _part_text(raw, part, left)
        if text:
            pieces.append(text)
            left -= len(text) + 1
    return "\n".join(pieces)[: max(limit, 0)]


def _part_text(raw: bytes, part: Part, left: int) -> str:
    text = part_content(raw, part, left)
    if part.subtype == "html":
        text = html_to_text(text)
    return text.strip()


def part_content(raw: bytes, part: Part, left: int) -> str:
    """The decoded content of a text part (HTML still marked up), enough for ``left`` characters of text."""
    is_html = part.subtype == "html"
    # Enough decoded bytes for ``left`` characters (4 bytes each at most), more for
    # HTML whose markup goes; the encoded form can be 3 times larger (QP).
    keep = left * (64 if is_html else 4) + 64
    encoded = raw[part.body_start : min(part.body_end, part.body_start + keep * 3 + 1024)]
    decoded = decode_transfer(encoded, part.encoding)
    data = encoded if decoded is None else decoded
    cut = len(data) > keep or part.body_start + len(encoded) < part.body_end
    data = data[:keep]
    charset = part.params.get("charset")
    if charset is None and is_html:
        meta = _META_CHARSET.search(data, 0, 4096)
        charset = meta.group(1).decode("ascii", "replace") if meta else None
    return decode(data, charset, final=not cut).replace("\r\n", "\n")


def html_to_text(markup: str) -> str:
    """Crude text of an HTML document: scripts, styles and comments dropped, tags removed,
    entities replaced (HTML 5 named character references via :func:`html.unescape`)."""
    kept: list[str] = []
    pos = 0
    while True:
        match = _HTML_BLOCK.search(markup, pos)
        if match is None:
            kept.append(markup[pos:])
            break
        kept.append(markup[pos : match.start()])
        name = (match.group(1) or "").lower()
        if name:
            end = _HTML_BLOCK_END[name].search(markup, match.end())
            stop = end.end() if end else -1
        else:
            found = markup.find("-->", match.end())
            stop = found + 3 if found >= 0 else -1
        if stop < 0:  # unterminated: the rest is not text
            break
        pos = stop
    text = _HTML_BREAK.sub("\n", "".join(kept))
    text = html.unescape(_HTML_TAG.sub(" ", text))
    text = _BLANKS.sub(" ", text)
    return _BLANK_LINES.sub("\n", text.replace(" \n", "\n"))
