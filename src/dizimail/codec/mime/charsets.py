"""Charset labels to Python codecs, lenient text decoding, RFC 2047 encoded words.

Mail in the wild labels text with names Python does not know, with the name of
a smaller charset than the text really uses (GB2312 for GBK or GB18030 text),
or not at all. Decoding therefore never fails: the declared charset is tried
first, then UTF-8 (RFC 6532 §3.2 raw headers), then GB18030, and Latin-1 last
because it maps every byte.
"""

from __future__ import annotations

import binascii
import codecs
import encodings
import pkgutil
import re
from encodings.aliases import aliases as _ALIASES

from dizimail.codec.mime.transfer import decode_base64

# Labels that name a subset of a charset Python knows: the superset accepts the same
# text and whatever the sender's software really produced (GBK bytes under "gb2312").
_SUPERSETS = {
    "gb2312": "gb18030",
    "gb_2312": "gb18030",
    "gb_2312-80": "gb18030",
    "csgb2312": "gb18030",
    "euc-cn": "gb18030",
    "euccn": "gb18030",
    "chinese": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "ms936": "gb18030",
    "windows-936": "gb18030",
    "big5": "big5hkscs",
    "x-big5": "big5hkscs",
    "cn-big5": "big5hkscs",
    "big-5": "big5hkscs",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
}

# Codecs that are not charsets a mail could be written in, or that decode in
# quadratic time (punycode, and idna through it): a hostile label must not pick them.
_REFUSED = frozenset({"punycode", "idna", "unicode-escape", "raw-unicode-escape", "undefined"})

# Every name the standard codec search can find: its aliases and its codec modules. A label outside
# them is refused before codecs.lookup, which caches each failed name for good (encodings._cache): one
# message could otherwise grow that cache by thousands of made-up charset names.
_KNOWN = frozenset(_ALIASES) | frozenset(_ALIASES.values()) | frozenset(
    m.name for m in pkgutil.iter_modules(encodings.__path__))

_FALLBACKS = ("utf-8", "gb18030")
_DECODE_ERRORS = (UnicodeError, LookupError, TypeError, ValueError)


def lookup(label: str | None) -> str | None:
    """The Python codec name for a MIME charset label (RFC 2978), or ``None`` if unusable.

    A RFC 2231 §5 language suffix (``utf-8*zh``) is ignored.
    """
    if not label:
        return None
    name = label.strip().strip("\"'").split("*", 1)[0].strip().lower()
    name = _SUPERSETS.get(name, name)
    known = encodings.normalize_encoding(name)
    if known not in _KNOWN and known.replace(".", "_") not in _KNOWN:
        return None
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if info.name.replace("_", "-") in _REFUSED or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def decode(data: bytes, label: str | None = None, *, final: bool = True) -> str:
    """Decode text bytes, trying ``label``, then UTF-8, GB18030 and Latin-1; never raises.

    With ``final=False`` an incomplete character at the end (the data was cut
    to a limit) is dropped instead of failing the whole decode.
    """
    first = lookup(label)
    tried: list[str] = []
    for name in (first, *_FALLBACKS):
        if name is None or name in tried:
            continue
        tried.append(name)
        try:
            if final:
                return data.decode(name)
            return codecs.getincrementaldecoder(name)("strict").decode(data, final=False)
        except _DECODE_ERRORS:
            continue
    return data.decode("latin-1")


def decode_header_bytes(value: bytes) -> str:
    """Decode a raw header value: ASCII, UTF-8 (RFC 6532 §3.2), GB18030, else Latin-1."""
    if value.isascii():
        return value.decode("ascii")
    return decode(value)


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")


def _word_bytes(encoding: str, text: str) -> bytes:
    raw = text.encode("ascii", "ignore")
    if encoding in "bB":
        return decode_base64(raw)
    return binascii.a2b_qp(raw, header=True)


def decode_words(text: str) -> str:
    """Replace RFC 2047 encoded words with their text (RFC 2047 §4, §6.2).

    Whitespace between adjacent encoded words is dropped (§6.2). Adjacent words
    in the same charset are decoded together, so a multi-byte character split
    across two words, as some mailers do, comes out whole. Words are decoded
    wherever they stand, also inside quoted strings, as most readers do.
    """
    if "=?" not in text:
        return text
    out: list[str] = []
    pending = bytearray()
    pending_charset: str | None = None
    pos = 0
    for match in _ENCODED_WORD.finditer(text):
        gap = text[pos : match.start()]
        charset = match.group(1)
        adjacent = pending_charset is not None and not gap.strip(" \t\r\n")
        if not (adjacent and charset.lower() == (pending_charset or "").lower()):
            if pending_charset is not None:
                out.append(decode(bytes(pending), pending_charset))
                pending.clear()
            if not adjacent:
                out.append(gap)
        pending_charset = charset
        pending += _word_bytes(match.group(2), match.group(3))
        pos = match.end()
    if pending_charset is not None:
        out.append(decode(bytes(pending), pending_charset))
    out.append(text[pos:])
    return "".join(out)
