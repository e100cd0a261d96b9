"""What is computed once per stored message (per blob) and kept with it (DESIGN.md §3): the IMAP
renderings, the search text and the SORT/THREAD keys."""

from __future__ import annotations

from dizimail.codec.mime.address import Mailbox, parse_addresses
from dizimail.codec.mime.charsets import decode_header_bytes, decode_words
from dizimail.codec.mime.headers import field_value, split_header
from dizimail.codec.mime.imap import bodystructure, envelope
from dizimail.codec.mime.sortkeys import base_subject, first_address, message_ids, references, sent_date
from dizimail.codec.mime.structure import parse_structure
from dizimail.codec.mime.text import addresses, body_text, header_text
from dizimail.model.types import BlobMeta, SearchDoc, SortKeys

BODY_TEXT_LIMIT = 200_000  # characters of body text indexed per message
_SORT_FIELDS = frozenset({"subject", "date", "from", "to", "cc", "message-id", "references", "in-reply-to"})


def search_doc(raw: bytes) -> SearchDoc:
    """The text SEARCH and webmail search look in: headers decoded (RFC 2047, 8-bit, GB2312...),
    text parts decoded with their charsets, everything case-folded once here. ``headers`` holds one
    ``name: value`` line per field (a line break inside a decoded value becomes a space, so that no
    value can pose as another field)."""
    structure = parse_structure(raw)
    headers = header_text(raw)

    def field(name: str) -> str:
        values = headers.get(name, [])
        text = "\n".join(values)
        if name != "subject":  # also the parsed addresses: comments and odd spacing removed
            text += "\n" + "\n".join(f"{n} <{a}>" if n else a for v in values for n, a in addresses(v))
        return text.casefold()
    all_headers = "\n".join(f"{k}: {' '.join(v.splitlines())}" for k, vs in headers.items() for v in vs).casefold()
    return SearchDoc(subject=field("subject"), addr_from=field("from"), addr_to=field("to"), addr_cc=field("cc"),
                     addr_bcc=field("bcc"), headers=all_headers,
                     body=body_text(raw, BODY_TEXT_LIMIT, structure=structure).casefold())


def sort_keys(raw: bytes) -> SortKeys:
    """The SORT and THREAD keys of a message (RFC 5256 §2, §3; RFC 5957 §3) from the first field of
    each name. Linear in the header's size, whatever it holds (codec.mime.sortkeys)."""
    first: dict[str, str] = {}
    for item in split_header(raw).fields:
        if item.name in _SORT_FIELDS and item.name not in first:
            first[item.name] = decode_header_bytes(field_value(raw, item))
    subject, reply = base_subject(decode_words(first.get("subject", "")))
    date = sent_date(first["date"]) if "date" in first else None
    ids = message_ids(first.get("message-id", ""))
    return SortKeys(subject=subject, reply=reply, sent=date[0] if date else None, sent_day=date[1] if date else None,
                    sort_from=first_address(first.get("from", ""), False),
                    sort_to=first_address(first.get("to", ""), False),
                    sort_cc=first_address(first.get("cc", ""), False),
                    display_from=first_address(first.get("from", ""), True),
                    display_to=first_address(first.get("to", ""), True),
                    message_id=ids[0] if ids else "",
                    references=references(first.get("references", ""), first.get("in-reply-to", "")))


def describe_blob(raw: bytes, with_search: bool = False) -> BlobMeta:
    """ENVELOPE, BODYSTRUCTURE, BODY and the SORT keys (and, if asked, the search text) of a message
    blob; the per-recipient prefix holds only trace fields, which none of them include."""
    structure = parse_structure(raw)
    return BlobMeta(envelope(raw), bodystructure(raw, extensible=True, structure=structure),
                    bodystructure(raw, extensible=False, structure=structure),
                    search_doc(raw) if with_search else None, sort_keys(raw))


def header_summary(raw: bytes, limit: int = 998) -> tuple[str, str]:
    """(Subject decoded, the first From: address) of a message, each at most ``limit`` characters and
    without line breaks or other controls: for lists and notices, where it is shown as data."""
    subject = sender = ""
    for item in split_header(raw).fields:
        if item.name == "subject" and not subject:
            subject = decode_words(decode_header_bytes(field_value(raw, item)))
        elif item.name == "from" and not sender:
            first = next((m for m in parse_addresses(decode_header_bytes(field_value(raw, item)))
                          if isinstance(m, Mailbox)), None)
            sender = f"{first.local}@{first.domain}" if first is not None and first.domain else ""
    return _plain(subject, limit), _plain(sender, limit)


def _plain(text: str, limit: int) -> str:
    return "".join(c if c.isprintable() else " " for c in text[:limit]).strip()
