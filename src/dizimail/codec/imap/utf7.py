"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3), kept for IMAP4rev1 clients.

Printable US-ASCII other than "&" stands for itself, "&" is written "&-", and
every other run of characters is UTF-16BE in modified base64 (RFC 2152 with
"," instead of "/" and no "=" padding) between "&" and "-".

Decoding is strict: one mailbox has one wire spelling, so a name that the
encoder would not have produced (printable ASCII inside a shift, non-zero pad
bits, two adjacent shifts, an unclosed "&", raw 8-bit characters) raises
:class:`ValueError`. IMAP4rev2 / UTF8=ACCEPT sessions (RFC 9051 §5.1,
RFC 6855 §3) send raw UTF-8 instead and must not pass names through here.
"""

from __future__ import annotations

import base64
import binascii
import re

from dizimail.util.memo import kept_when_short

_NON_DIRECT = re.compile(r"[^\x20-\x7e]+")  # "&" is handled before, as "&-"
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_SHIFT = re.compile(r"&([A-Za-z0-9+,]*)-")


def _encode_run(match: re.Match[str]) -> str:
    raw = match[0].encode("utf-16-be")  # a lone surrogate raises UnicodeEncodeError (a ValueError)
    return "&" + base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",") + "-"


@kept_when_short()  # a session names the same few mailboxes again and again (STATUS on a timer, LIST)
def encode_mutf7(name: str) -> str:
    """Encode a mailbox name to modified UTF-7 (RFC 3501 §5.1.3)."""
    return _NON_DIRECT.sub(_encode_run, name.replace("&", "&-"))


def _decode_run(b64: str) -> str:
    # RFC 3501 §5.1.3: 16-bit units, so the bit count modulo 16 must leave only pad bits (< 6).
    if (len(b64) * 6) % 16 >= 6:
        raise ValueError("modified UTF-7: truncated base64 run")
    padded = b64.replace(",", "/") + "=" * (-len(b64) % 4)
    try:
        raw = binascii.a2b_base64(padded, strict_mode=True)
        text = raw.decode("utf-16-be")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("modified UTF-7: bad base64 run") from None
    if any(" " <= ch <= "~" for ch in text):
        raise ValueError("modified UTF-7: printable ASCII must not be encoded")
    return text


@kept_when_short()
def decode_mutf7(name: str) -> str:
    """Decode a modified UTF-7 mailbox name (RFC 3501 §5.1.3); ValueError when malformed."""
    if _PRINTABLE.fullmatch(name) is None:
        raise ValueError("modified UTF-7: only printable US-ASCII is allowed")
    out: list[str] = []
    pos = 0
    last_shift_end = -1
    while True:
        amp = name.find("&", pos)
        if amp < 0:
            out.append(name[pos:])
            break
        out.append(name[pos:amp])
        m = _SHIFT.match(name, amp)
        if m is None:
            raise ValueError("modified UTF-7: unterminated or invalid '&' sequence")
        if not m[1]:
            out.append("&")
        else:
            if amp == last_shift_end:
                raise ValueError("modified UTF-7: adjacent encoded runs must be merged")
            out.append(_decode_run(m[1]))
            last_shift_end = m.end()
        pos = m.end()
    text = "".join(out)
    if encode_mutf7(text) != name:  # catches non-zero pad bits and any other second spelling
        raise ValueError("modified UTF-7: non-canonical encoding")
    return text
