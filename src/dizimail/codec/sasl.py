"""SASL PLAIN (RFC 4616) and the LOGIN mechanism's base64 steps, sans-IO.

The protocol framing (RFC 4954 for SMTP, RFC 5034 for POP3: the "*" cancel,
"=" for an empty initial response, the 334 / "+ " challenges) belongs to the
sessions; these functions only turn base64 text into strings or a
:class:`SaslError`. Base64 is validated strictly (RFC 4648 §3.3: no characters
outside the alphabet, canonical padding) so that one credential has one
encoding.
"""

from __future__ import annotations

import base64
import binascii

MAX_INPUT = 4096  # characters of base64; larger inputs are refused before decoding
_MAX_FIELD = 255  # RFC 4616 §2: authzid, authcid and passwd are at most 255 octets


class SaslError(Exception):
    """Malformed SASL input; the session answers 501 / -ERR and counts a failure."""


def _b64decode(s: str) -> bytes:
    if len(s) > MAX_INPUT:
        raise SaslError("SASL input too long")
    if not s.isascii():
        raise SaslError("invalid base64")
    try:
        raw = binascii.a2b_base64(s, strict_mode=True)
    except binascii.Error:
        raise SaslError("invalid base64") from None
    # strict_mode still accepts non-zero padding bits; re-encoding catches them.
    if base64.b64encode(raw).decode("ascii") != s:
        raise SaslError("invalid base64")
    return raw


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SaslError("invalid UTF-8") from None


def decode_plain(b64: str) -> tuple[str, str, str]:
    """Decode a PLAIN message ``[authzid] NUL authcid NUL passwd`` (RFC 4616 §2).

    Returns (authzid, authcid, password); authzid is "" when absent. authcid
    and passwd must be non-empty; each field is at most 255 octets of UTF-8.
    """
    parts = _b64decode(b64).split(b"\x00")
    if len(parts) != 3:
        raise SaslError("PLAIN needs exactly two NUL separators")
    authzid, authcid, password = parts
    if not authcid or not password:
        raise SaslError("empty PLAIN authcid or password")
    if max(len(p) for p in parts) > _MAX_FIELD:
        raise SaslError("PLAIN field too long")
    return _utf8(authzid), _utf8(authcid), _utf8(password)


def b64_decode_text(s: str) -> str:
    """Decode one LOGIN step (user name or password): strict base64 of UTF-8 text without NUL."""
    text = _utf8(_b64decode(s))
    if "\x00" in text:
        raise SaslError("NUL in SASL text")
    return text


def b64_encode_text(s: str) -> str:
    """Base64 of the UTF-8 text ``s`` (RFC 4648 §4), e.g. a LOGIN prompt ``Username:``."""
    return base64.b64encode(s.encode("utf-8")).decode("ascii")
