"""MIME header field values: Content-Type, Content-Disposition and their parameters.

Implements the value syntax of RFC 2045 §5.1 (``type "/" subtype *(";"
parameter)``, tokens, quoted strings, RFC 822 comments), RFC 2183 §2 for
Content-Disposition, RFC 3282 §2 for Content-Language, and RFC 2231 §3-§4
parameter value continuations with charset and language.

Input is the unfolded field value as a Latin-1 string, so every byte of the
message survives the round trip (a boundary must be matched byte for byte).
Parsing is lenient, linear and never raises: an unterminated quoted string or
comment runs to the end of the value, a parameter without ``=`` is skipped.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from dizimail.codec.mime.charsets import decode

# RFC 2045 §5.1 token: any US-ASCII character but SPACE, CTLs and tspecials.
_TOKEN = r"[^\x00-\x20\x7f-\xff()<>@,;:\\\"/\[\]?=]+"
_TYPE = re.compile(rf"\s*({_TOKEN})\s*/\s*({_TOKEN})")
_DISPOSITION = re.compile(rf"\s*({_TOKEN})")
_MAX_SECTION = 9999  # RFC 2231 §3 continuation numbers beyond this are noise

RawParams = list[tuple[str, str]]


def skip_comment(text: str, pos: int) -> int:
    """Offset after the comment opening at ``pos`` (RFC 5322 §3.2.2: nested, with quoted-pairs)."""
    depth = 0
    n = len(text)
    while pos < n:
        char = text[pos]
        if char == "\\":
            pos += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return pos + 1
        pos += 1
    return n


def read_quoted(text: str, pos: int) -> tuple[str, int]:
    """The content of the quoted string opening at ``pos`` and the offset after it."""
    out: list[str] = []
    n = len(text)
    pos += 1
    while pos < n:
        char = text[pos]
        if char == '"':
            return "".join(out), pos + 1
        if char == "\\" and pos + 1 < n:
            pos += 1
            char = text[pos]
        out.append(char)
        pos += 1
    return "".join(out), n


def strip_comments(text: str) -> str:
    """``text`` without its RFC 5322 §3.2.2 comments; quoted strings are kept intact."""
    if "(" not in text:
        return text
    out: list[str] = []
    pos = 0
    n = len(text)
    while pos < n:
        char = text[pos]
        if char == "(":
            pos = skip_comment(text, pos)
            out.append(" ")
            continue
        if char == '"':
            _, after = read_quoted(text, pos)
            out.append(text[pos:after])
            pos = after
            continue
        out.append(char)
        pos += 1
    return "".join(out)


def parse_params(text: str) -> RawParams:
    """``;``-separated ``attribute=value`` pairs (RFC 2045 §5.1), names lower-case, values unquoted."""
    params: RawParams = []
    pos = 0
    n = len(text)
    # The next "=" and ";" at or after ``pos``; cached because ``pos`` only moves forward,
    # so that "a;a;a;..." or "a=b a=b ..." cost linear time, not quadratic.
    equals = semicolon = -2
    while pos < n:
        char = text[pos]
        if char in " \t\r\n;":
            pos += 1
            continue
        if char == "(":
            pos = skip_comment(text, pos)
            continue
        if equals != -1 and equals < pos:
            equals = text.find("=", pos)
        if semicolon != -1 and semicolon < pos:
            semicolon = text.find(";", pos)
        if equals < 0:
            break
        if 0 <= semicolon < equals:
            pos = semicolon + 1  # an attribute without a value
            continue
        name = strip_comments(text[pos:equals]).strip().lower()
        pos = equals + 1
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos < n and text[pos] == '"':
            value, pos = read_quoted(text, pos)
        else:
            if semicolon != -1 and semicolon < pos:
                semicolon = text.find(";", pos)
            stop = n if semicolon < 0 else semicolon
            value = strip_comments(text[pos:stop]).strip()
            pos = stop
        if name and not any(c in name for c in ' \t"'):
            params.append((name, value))
    return params


def parse_content_type(text: str) -> tuple[str, str, RawParams] | None:
    """``(type, subtype, params)`` of a Content-Type value (RFC 2045 §5.1), or ``None`` if invalid.

    Type and subtype are lower-case. RFC 2045 §5.2 makes an invalid field mean
    the default type; the caller decides which default applies.
    """
    head, _, tail = text.partition(";")
    bare = strip_comments(head)
    match = _TYPE.match(bare)
    if match is None:
        return None
    # "text/plain charset=utf-8": a missing semicolon should not lose the charset.
    params = parse_params(bare[match.end() :]) + parse_params(tail)
    return match.group(1).lower(), match.group(2).lower(), params


def parse_disposition(text: str) -> tuple[str, RawParams] | None:
    """``(type, params)`` of a Content-Disposition value (RFC 2183 §2), type lower-case."""
    head, _, rest = text.partition(";")
    match = _DISPOSITION.match(strip_comments(head))
    if match is None:
        return None
    return match.group(1).lower(), parse_params(rest)


def parse_language(text: str) -> tuple[str, ...]:
    """Language tags of a Content-Language value (RFC 3282 §2)."""
    return tuple(tag for tag in (part.strip() for part in strip_comments(text).split(",")) if tag)


def _pretty(value: str) -> str:
    """A plain parameter value as text: raw 8-bit bytes are decoded, not left as Latin-1."""
    if value.isascii():
        return value
    return decode(value.encode("latin-1"))


def decode_params(params: RawParams) -> dict[str, str]:
    """Parameters as a dict, RFC 2231 continuations joined and charsets decoded (RFC 2231 §3-§4).

    The first occurrence of a name wins. A RFC 2231 value (``name*``,
    ``name*0``, ``name*0*``...) is preferred over a plain one of the same name.
    """
    result: dict[str, str] = {}
    extended: dict[str, dict[int, tuple[bool, str]]] = {}
    for name, value in params:
        base, star, rest = name.partition("*")
        number = rest.rstrip("*")
        if star and base and (number == "" or (number.isdigit() and len(number) <= 4)):
            section = int(number) if number else 0
            if section <= _MAX_SECTION:
                encoded = rest == "" or rest.endswith("*")
                extended.setdefault(base, {}).setdefault(section, (encoded, value))
                continue
        result.setdefault(name, _pretty(value))
    for base, sections in extended.items():
        result[base] = _join_sections(sections)
    return result


def _join_sections(sections: dict[int, tuple[bool, str]]) -> str:
    charset: str | None = None
    data = bytearray()
    for index, number in enumerate(sorted(sections)):
        encoded, value = sections[number]
        if encoded:
            if index == 0 and value.count("'") >= 2:
                charset, _, value = value.split("'", 2)
            data += unquote_to_bytes(value.encode("latin-1"))
        else:
            data += value.encode("latin-1")
    return decode(bytes(data), charset)
