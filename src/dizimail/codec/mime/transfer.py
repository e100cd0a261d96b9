"""Content-Transfer-Encoding decoders (RFC 2045 §6), lenient by design.

Stored mail is not re-validated: base64 bodies carry stray characters, lines
padded one by one, or a truncated last quantum; quoted-printable bodies carry
lone ``=`` signs. Decoding recovers what it can and never raises, because a
FETCH BINARY or a search index must not fail on one sender's bad encoder.
"""

from __future__ import annotations

import binascii
import re

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_JUNK = bytes(b for b in range(256) if b not in _B64_ALPHABET and b != ord("="))

IDENTITY = frozenset({"7bit", "8bit", "binary", "7-bit", "8-bit", ""})
"""Encodings that leave the body as it is (RFC 2045 §6.2); the hyphenated forms are common typos."""


def _b64_chunk(chunk: bytes) -> bytes:
    rest = len(chunk) % 4
    if rest == 1:  # six bits cannot make a byte: the final character is noise
        chunk = chunk[:-1]
    elif rest:
        chunk += b"=" * (4 - rest)
    try:
        return binascii.a2b_base64(chunk)
    except binascii.Error:  # pragma: no cover - the alphabet and padding are already clean
        return b""


def decode_base64(data: bytes) -> bytes:
    """Decode RFC 2045 §6.8 base64, ignoring characters outside the alphabet.

    Padding in the middle (each line encoded on its own) restarts decoding, so
    such bodies come out whole instead of stopping at the first ``=``.
    """
    clean = data.translate(None, _B64_JUNK)
    if b"=" not in clean.rstrip(b"="):
        return _b64_chunk(clean.rstrip(b"="))
    return b"".join(_b64_chunk(chunk) for chunk in clean.split(b"=") if chunk)


# Tried only where a run of blanks starts (the look-behind): without it every position inside a long
# run of blanks not ending a line rescanned the run, and 20,000 blanks took seconds (quadratic).
_TRAILING_WS = re.compile(rb"(?<![ \t])[ \t]+(?=\r?\n|$)")


def decode_quoted_printable(data: bytes) -> bytes:
    """Decode RFC 2045 §6.7 quoted-printable; malformed ``=`` sequences are kept as they are.

    Trailing white space on a line is transport padding and is removed first (rule 3), so a
    soft line break written as ``= `` still joins the lines."""
    return binascii.a2b_qp(_TRAILING_WS.sub(b"", data))


def decode_transfer(body: bytes, encoding: str) -> bytes | None:
    """Undo a Content-Transfer-Encoding (RFC 2045 §6); ``None`` when the encoding is unknown.

    ``encoding`` is the lower-case token of the header (RFC 2045 §6.1). Unknown
    encodings (``x-uuencode`` and the like) yield ``None`` so that the IMAP
    server can answer ``NO [UNKNOWN-CTE]`` (RFC 3516 §4.3).
    """
    if encoding in IDENTITY:
        return body
    if encoding == "base64":
        return decode_base64(body)
    if encoding == "quoted-printable":
        return decode_quoted_printable(body)
    return None
