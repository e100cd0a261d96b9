"""IMAP renderings of a stored message (computed once per blob; DESIGN.md §3)."""

from __future__ import annotations

from dizimail.codec.mime.imap import bodystructure, envelope
from dizimail.codec.mime.structure import parse_structure
from dizimail.codec.mime.text import addresses, body_text, header_text
from dizimail.model.types import BlobMeta, SearchDoc

BODY_TEXT_LIMIT = 200_000  # characters of body text indexed per message


def search_doc(raw: bytes) -> SearchDoc:
    """The text SEARCH and webmail search look in: headers decoded (RFC 2047, 8-bit, GB2312...),
    text parts decoded with their charsets, everything case-folded once here."""
    structure = parse_structure(raw)
    headers = header_text(raw)

    def field(name: str) -> str:
        values = headers.get(name, [])
        text = "\n".join(values)
        if name != "subject":  # also the parsed addresses: comments and odd spacing removed
            text += "\n" + "\n".join(f"{n} <{a}>" if n else a for v in values for n, a in addresses(v))
        return text.casefold()
    all_headers = "\n".join(f"{k}: {v}" for k, vs in headers.items() for v in vs).casefold()
    return SearchDoc(subject=field("subject"), addr_from=field("from"), addr_to=field("to"), addr_cc=field("cc"),
                     addr_bcc=field("bcc"), headers=all_headers,
                     body=body_text(raw, BODY_TEXT_LIMIT, structure=structure).casefold())


def describe_blob(raw: bytes, with_search: bool = False) -> BlobMeta:
    """ENVELOPE, BODYSTRUCTURE and BODY (and, if asked, the search text) of a message blob; the
    per-recipient prefix holds only trace fields, which none of them include."""
    structure = parse_structure(raw)
    return BlobMeta(envelope(raw), bodystructure(raw, extensible=True, structure=structure),
                    bodystructure(raw, extensible=False, structure=structure),
                    search_doc(raw) if with_search else None)
