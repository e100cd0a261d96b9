"""MIME structure and IMAP renderings of stored RFC 5322 messages, sans-IO.

A stored message is bytes; everything here reads those bytes and returns
values, with no I/O and no exceptions on hostile input (malformed headers,
8-bit bytes, missing boundaries, absurd nesting). The design keeps one pass
for structure and slices for content:

- :mod:`~dizimail.codec.mime.structure`: :func:`parse_structure` finds the
  MIME tree (RFC 2045, RFC 2046) as byte offsets, bounded in depth and part
  count; :func:`resolve` maps IMAP part numbers onto it (RFC 3501 §6.4.5).
- :mod:`~dizimail.codec.mime.imap`: ENVELOPE, BODY and BODYSTRUCTURE as wire
  bytes (RFC 3501 §7.4.2, RFC 9051 §7.5.2), BODY[section] contents and
  BINARY[section] (RFC 3516).
- :mod:`~dizimail.codec.mime.text`: decoded header values and body text for
  SEARCH (RFC 2047, RFC 2231, RFC 6532, charsets such as GB2312/GB18030).
- Helpers: :mod:`.headers` (header fields with offsets), :mod:`.params`
  (Content-Type and RFC 2231 parameters), :mod:`.address` (RFC 5322 address
  lists), :mod:`.charsets` (charset labels, lenient decoding, encoded words),
  :mod:`.transfer` (base64 and quoted-printable).

The stdlib ``email`` package is not used: its parser neither keeps offsets
nor bounds its work on hostile input.
"""

from dizimail.codec.mime.address import Group, Mailbox, parse_addresses
from dizimail.codec.mime.imap import binary, bodystructure, envelope, imap_string, section
from dizimail.codec.mime.structure import MAX_DEPTH, MAX_PARTS, Part, parse_structure, resolve
from dizimail.codec.mime.text import addresses, body_text, header_text, html_to_text

__all__ = [
    "MAX_DEPTH",
    "MAX_PARTS",
    "Group",
    "Mailbox",
    "Part",
    "addresses",
    "binary",
    "body_text",
    "bodystructure",
    "envelope",
    "header_text",
    "html_to_text",
    "imap_string",
    "parse_addresses",
    "parse_structure",
    "resolve",
    "section",
]
