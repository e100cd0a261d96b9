"""IMAP renderings of a stored message: ENVELOPE, BODY/BODYSTRUCTURE, sections, BINARY.

Everything returns wire bytes ready to follow the FETCH data item name
(RFC 3501 §7.4.2, RFC 9051 §7.5.2), or the raw contents of a section for the
caller to send as a literal. Header values are given as they are in the
message: encoded words are not decoded (RFC 3501 §7.4.2 ENVELOPE), 8-bit
bytes are passed through in literals, which IMAP4rev1 allows (RFC 3501 §4.3)
where quoted strings are 7-bit only. With ``utf8=True`` (the client enabled
UTF8=ACCEPT, RFC 6855 §3, or speaks IMAP4rev2) valid UTF-8 is sent quoted.

Every function accepts a ``structure`` already returned by
:func:`~dizimail.codec.mime.structure.parse_structure` so that one FETCH
parses a message once.
"""

from __future__ import annotations

from urllib.parse import quote

from dizimail.codec.mime.address import Group, Mailbox, parse_addresses
from dizimail.codec.mime.headers import HeaderField, field_bytes, first_value, split_header
from dizimail.codec.mime.structure import Part, parse_structure, resolve
from dizimail.codec.mime.transfer import decode_transfer

NIL = b"NIL"
_LONG = 1000  # longer strings go as literals to keep response lines short
_EMPTY_BODY = b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0'
_MISSING_LOCAL = b"MISSING_MAILBOX"
_MISSING_DOMAIN = b"MISSING_DOMAIN"


def imap_string(value: bytes | str | None, *, utf8: bool = False) -> bytes:
    """``value`` as an IMAP nstring (RFC 3501 §4.3, §4.5): NIL, a quoted string or a literal.

    A literal is used for CR, LF, 8-bit bytes (unless ``utf8`` and they are
    valid UTF-8) and long values. NUL bytes, which no IMAP string may carry,
    are dropped.
    """
    if value is None:
        return NIL
    data = value.encode("utf-8") if isinstance(value, str) else value
    if b"\x00" in data:
        data = data.replace(b"\x00", b"")
    literal = len(data) > _LONG or b"\r" in data or b"\n" in data
    if not literal and not data.isascii():
        literal = not utf8 or not _valid_utf8(data)
    if literal:
        return b"{%d}\r\n" % len(data) + data
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# ---------------------------------------------------------------- ENVELOPE


def _latin1(value: str | None) -> bytes | None:
    return None if value is None else value.encode("latin-1")


def _mailbox(mailbox: Mailbox, utf8: bool) -> bytes:
    fields = (
        imap_string(_latin1(mailbox.name), utf8=utf8),
        imap_string(_latin1(mailbox.route), utf8=utf8),
        imap_string(_latin1(mailbox.local) or _MISSING_LOCAL, utf8=utf8),
        imap_string(_latin1(mailbox.domain) or _MISSING_DOMAIN, utf8=utf8),
    )
    return b"(" + b" ".join(fields) + b")"


def _address_list(value: bytes | None, utf8: bool) -> bytes | None:
    """RFC 3501 §7.4.2 address list; groups as start and end markers. ``None`` if empty."""
    if value is None:
        return None
    out: list[bytes] = []
    for item in parse_addresses(value.decode("latin-1")):
        if isinstance(item, Group):
            out.append(b"(NIL NIL " + imap_string(_latin1(item.name), utf8=utf8) + b" NIL)")
            out.extend(_mailbox(member, utf8) for member in item.members)
            out.append(b"(NIL NIL NIL NIL)")
        else:
            out.append(_mailbox(item, utf8))
    return b"(" + b"".join(out) + b")" if out else None


def _envelope(raw: bytes, fields: list[HeaderField], utf8: bool) -> bytes:
    def text(name: str) -> bytes:
        return imap_string(first_value(raw, fields, name) or None, utf8=utf8)

    def addresses(name: str) -> bytes | None:
        return _address_list(first_value(raw, fields, name), utf8)

    sender_from = addresses("from")
    items = (
        text("date"),
        text("subject"),
        sender_from or NIL,
        addresses("sender") or sender_from or NIL,  # RFC 3501 §7.4.2: absent or empty means From
        addresses("reply-to") or sender_from or NIL,
        addresses("to") or NIL,
        addresses("cc") or NIL,
        addresses("bcc") or NIL,
        text("in-reply-to"),
        text("message-id"),
    )
    return b"(" + b" ".join(items) + b")"


def envelope(raw: bytes, *, utf8: bool = False) -> bytes:
    """The ENVELOPE of a message (RFC 3501 §7.4.2, RFC 9051 §7.5.2), parenthesised."""
    return _envelope(raw, split_header(raw).fields, utf8)


# ---------------------------------------------------------------- BODY / BODYSTRUCTURE


def _params(params: dict[str, str], utf8: bool) -> bytes:
    """body-fld-param; values that are not printable ASCII go out in RFC 2231 §4 form."""
    if not params:
        return NIL
    out: list[bytes] = []
    for name, value in params.items():
        if value.isascii() and value.isprintable():
            out += (imap_string(name.upper(), utf8=utf8), imap_string(value, utf8=utf8))
        else:
            encoded = "utf-8''" + quote(value, safe="", encoding="utf-8", errors="replace")
            out += (imap_string(name.upper() + "*", utf8=utf8), imap_string(encoded, utf8=utf8))
    return b"(" + b" ".join(out) + b")"


def _extension(part: Part, utf8: bool) -> list[bytes]:
    """body-fld-dsp, body-fld-lang and body-fld-loc (RFC 3501 §7.4.2, RFC 2183, RFC 3282, RFC 2557)."""
    if part.disposition is None:
        disposition = NIL
    else:
        disposition = (
            b"(" + imap_string(part.disposition.upper()) + b" " + _params(part.disposition_params, utf8) + b")"
        )
    if part.language:
        language = b"(" + b" ".join(imap_string(tag, utf8=utf8) for tag in part.language) + b")"
    else:
        language = NIL
    return [disposition, language, imap_string(part.location, utf8=utf8)]


def _write_body(raw: bytes, part: Part, extensible: bool, utf8: bool, out: list[bytes]) -> None:
    if part.is_multipart:
        out.append(b"(")
        for child in part.children:
            _write_body(raw, child, extensible, utf8, out)
        if not part.children:  # a multipart needs one body (RFC 3501 §9 body-type-mpart)
            out.append(_EMPTY_BODY + (b" NIL NIL NIL NIL)" if extensible else b")"))
        out.append(b" " + imap_string(part.subtype.upper()))
        if extensible:
            out.append(b" " + b" ".join([_params(part.params, utf8), *_extension(part, utf8)]))
        out.append(b")")
        return
    embedded = part.message
    maintype, subtype = part.maintype, part.subtype
    if embedded is None and part.content_type == "message/rfc822":
        # Without a parsed message (encoded, or too deep) the MESSAGE form cannot be
        # written; calling it what it is to the client keeps the response parseable.
        maintype, subtype = "application", "octet-stream"
    fields = [
        imap_string(maintype.upper()),
        imap_string(subtype.upper()),
        _params(part.params, utf8),
        imap_string(part.content_id, utf8=utf8),
        imap_string(part.description, utf8=utf8),
        imap_string(part.encoding.upper(), utf8=utf8),
        b"%d" % part.size,
    ]
    out.append(b"(" + b" ".join(fields))
    lines = b" %d" % raw.count(b"\n", part.body_start, part.body_end)
    if embedded is not None:
        out.append(b" " + _envelope(raw, split_header(raw, embedded.header_start, embedded.body_end).fields, utf8))
        out.append(b" ")
        _write_body(raw, embedded, extensible, utf8, out)
        out.append(lines)
    elif maintype == "text":
        out.append(lines)
    if extensible:
        out.append(b" " + b" ".join([imap_string(part.md5, utf8=utf8), *_extension(part, utf8)]))
    out.append(b")")


def bodystructure(raw: bytes, extensible: bool = True, *, utf8: bool = False, structure: Part | None = None) -> bytes:
    """BODYSTRUCTURE (``extensible``) or BODY of a message (RFC 3501 §7.4.2), parenthesised.

    Sizes and line counts are those of the encoded bodies as stored; type,
    subtype, parameter names and encodings are upper-case, as in the RFC's
    examples. Line counts are the number of LF characters in the body.
    """
    root = parse_structure(raw) if structure is None else structure
    out: list[bytes] = []
    _write_body(raw, root, extensible, utf8, out)
    return b"".join(out)


# ---------------------------------------------------------------- sections


def section(
    raw: bytes,
    part: tuple[int, ...],
    kind: str = "",
    fields: tuple[str, ...] = (),
    *,
    structure: Part | None = None,
) -> bytes | None:
    """The contents of BODY[section] (RFC 3501 §6.4.5), or ``None`` if there is no such section.

    ``part`` is the part number (``()`` for the message), ``kind`` one of
    ``""``, ``HEADER``, ``HEADER.FIELDS``, ``HEADER.FIELDS.NOT``, ``TEXT``,
    ``MIME``. HEADER, HEADER.FIELDS(.NOT) and TEXT need the message or a
    message/rfc822 part; MIME needs a part number. HEADER.FIELDS returns the
    matching fields as they stand, in message order, and a blank line.
    """
    kind = kind.upper()
    if not part and kind in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):  # the message's own header: no MIME parse
        return _header_fields(raw, 0, len(raw), kind, fields)
    root = parse_structure(raw) if structure is None else structure
    node = resolve(root, part)
    if node is None:
        return None
    if kind == "":
        return raw if not part else raw[node.body_start : node.body_end]
    if kind == "MIME":
        return raw[node.header_start : node.body_start] if part else None
    message = node if not part else node.message
    if message is None:
        return None
    if kind == "HEADER":
        return raw[message.header_start : message.body_start]
    if kind == "TEXT":
        return raw[message.body_start : message.body_end]
    if kind in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        return _header_fields(raw, message.header_start, message.body_end, kind, fields)
    return None


def _header_fields(raw: bytes, start: int, end: int, kind: str, fields: tuple[str, ...]) -> bytes:
    """HEADER.FIELDS (or .NOT) of the header that starts at ``start``: the fields as they stand, then a blank line."""
    wanted = {name.lower() for name in fields}
    keep = kind == "HEADER.FIELDS"
    block = split_header(raw, start, end)
    return b"".join(field_bytes(raw, f) for f in block.fields if (f.name in wanted) == keep) + b"\r\n"


def binary(raw: bytes, part: tuple[int, ...], *, structure: Part | None = None) -> bytes | None:
    """The contents of BINARY[section] (RFC 3516 §4.2): the part's body, transfer-decoded.

    ``()`` is the whole message, unchanged. ``None`` if the part does not
    exist or its Content-Transfer-Encoding is unknown (the caller answers
    ``NO [UNKNOWN-CTE]``, RFC 3516 §4.3; tell the two apart with
    :func:`~dizimail.codec.mime.structure.resolve`). Multiparts and parsed
    message/rfc822 parts have no encoding of their own (RFC 2045 §6.4).
    """
    if not part:
        return raw
    root = parse_structure(raw) if structure is None else structure
    node = resolve(root, part)
    if node is None:
        return None
    body = raw[node.body_start : node.body_end]
    if node.is_multipart or node.message is not None:
        return body
    return decode_transfer(body, node.encoding)
