"""The tokens the content filter judges a message by (anti-spam layer 4): a set of strings, each present
or not (as Graham and Robinson count them).

- Headers people and mailers write (Subject, From's display name and domain, To/Cc counts, X-Mailer,
  Content-Type), never the trace and list fields a relay adds (Received, Message-ID, Date, List-*,
  X-Spam-*), nor how many fields there are (relays add them): those say which network carried the mail,
  which no longer holds on the next one. The subject's words are words of the text (one vocabulary:
  a word learnt from bodies counts in a subject, which matters most for short mail such as feed
  items); only its shape (ALL CAPS, "!") is a token of its own.
- URLs are taken out of the text before its words are read: their hosts are tokens, their paths are
  not words anyone reads (``/click/`` in a news feed's links is not the "click" of spam).
- The text of text/plain and text/html parts, decoded (RFC 2045/2047, the charsets of codec.mime):
  words of letters in lower case, an ALL-CAPS mark, money and percentages; a run longer than
  LONG_WORD letters and digits (base64 shown as text, hashes) only as ``skip:``, its first letter and
  its length in tens (as SpamBayes: thousands of one-off tokens say nothing and fill MAX_TOKENS);
  CJK runs as overlapping character bigrams (a 2-character word is the commonest Chinese word length; a segmenter such as
  jieba was weighed: a dependency and ~20x slower for little over bigrams in Bayes filters).
- What HTML shows and hides: hidden text, tiny or invisible fonts, an image-only body, links whose
  text names another host than their target, link counts; URL hosts (and their registrable domain).
- The MIME shape: part types, attachment file types, charsets.

Bounded work: at most MAX_TEXT characters of text and MAX_TOKENS tokens per message, every pattern
linear: no nested quantifiers over the same characters, and a pattern that starts with a run which
can fail after it (digits before a currency word) is tried only where the run starts, not again from
each of its characters. Case-insensitive patterns are avoided on the text (they cost several times
more a character); ``in`` finds whether a pattern can match at all before it runs.
"""

from __future__ import annotations

import re
from itertools import islice

from dizimail.codec.mime.charsets import decode_header_bytes, decode_words
from dizimail.codec.mime.headers import field_value, split_header
from dizimail.codec.mime.structure import parse_structure
from dizimail.codec.mime.text import addresses, html_to_text, part_content

MAX_TEXT = 200_000  # characters of decoded text looked at
MAX_MARKUP = 64 * 1024  # characters of an HTML part searched for its tells (each pattern runs without a GIL switch)
MAX_MARKUP_TOTAL = 256 * 1024  # ... and of all a message's HTML parts together (a message may hold hundreds)
MAX_TOKENS = 5000
_WORD = re.compile(r"[^\W\d_][^\W_]{1,2000}(?:['’][^\W\d_]{1,3})?")
LONG_WORD = 12  # longer "words" (base64, hashes, glued text) count by first letter and length only
_WORD_ASCII = re.compile(r"[A-Za-z][A-Za-z0-9]{1,2000}(?:'[A-Za-z]{1,3})?")  # _WORD on ASCII text, 2x faster
# Money: a sign before a number, or a number before a currency word. Each pattern only runs when
# ``in`` (a fast scan) found what it needs: a case-insensitive pattern costs tens of ns a character.
_MONEY_SIGN = re.compile(r"[$€£¥]\s?\d")
# Tried only where a number starts (the look-behind), so a long run of digits is scanned once, not
# once per digit (quadratic: 100,000 digits before a "usd" elsewhere took minutes).
_MONEY_WORD = re.compile(r"(?<![\d,])\d[\d,]*\s?(?:dollars|usd|rmb|元|万元)", re.IGNORECASE)
_PERCENT = re.compile(r"\d{1,3}%")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{2,}")
_URL_START = r"(?:[hH][tT][tT][pP][sS]?://|[wW][wW][wW]\.)"  # not re.IGNORECASE: 3x slower a character
_URL = re.compile(_URL_START + r"([A-Za-z0-9.-]{1,253})")
_WHOLE_URL = re.compile(_URL_START + r"[^\s<>\"']{1,2000}")
# The HTML tells run over the lower-cased markup (lower() once is a fast C loop; a case-insensitive
# pattern costs tens of ns a character), so their letters are lower case.
# "=\s*(?:[\"']\s*)?": with no quote, two \s* side by side split a run of blanks in every way (quadratic:
# a 64 KiB part of blank lines after "<a href=" took 105 s). The host is taken whole ((?![a-z0-9.-])):
# each shorter host would rescan the 500-character tail (253 x 500 steps for every "<a").
_HREF = re.compile(r"<a\b[^<>]{0,500}?href\s*=\s*(?:[\"']\s*)?(?:https?://)?([a-z0-9.-]{1,253})(?![a-z0-9.-])"
                   r"[^<>]{0,500}>"
                   r"([^<]{0,500})</a")
_HIDDEN = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*[01](?:px|pt)?\b|"
                     r"<font[^<>]{0,200}size\s*=\s*[\"']?[01]\b")
_IMG = re.compile(r"<img\b")
_TAG = re.compile(r"<(/?[a-z][a-z0-9]{0,10})")
_SKIP_HEADERS = frozenset((
    "received", "message-id", "date", "return-path", "delivered-to", "x-original-to", "envelope-to",
    "references", "in-reply-to", "x-spam-status", "x-spam-level", "x-spam-flag", "x-spam-checker-version",
    "x-spam-score", "x-spam-report", "authentication-results", "arc-seal", "arc-message-signature",
    "arc-authentication-results", "dkim-signature", "domainkey-signature", "x-beenthere", "x-mailman-version",
    "precedence", "errors-to", "sender", "x-loop", "mailing-list", "list-id", "list-help", "list-post",
    "list-subscribe", "list-unsubscribe", "list-archive", "list-owner", "x-original-date", "status",
    "x-status", "x-keywords", "x-uid", "content-length", "lines", "x-mailman-approved-at", "cc", "to",
))
_HEADER_WORDS = ("subject",)
_SHAPE_HEADERS = ("x-mailer", "user-agent", "x-priority", "x-msmail-priority", "mime-version", "organization",
                  "reply-to", "content-transfer-encoding")


def tokenize(raw: bytes) -> set[str]:
    """The message's tokens (see the module's docstring); never raises on hostile input. A leading mbox
    ``From `` line (files from an archive or another server's spool) is skipped."""
    if raw.startswith(b"From "):
        end = raw.find(b"\n")
        raw = raw[end + 1:] if end >= 0 else b""
    out: set[str] = set()
    _headers(raw, out)
    _body(raw, out)
    return out


def _headers(raw: bytes, out: set[str]) -> None:
    block = split_header(raw)
    for f in block.fields[:200]:
        name = f.name
        if name in _SKIP_HEADERS:
            if name in ("to", "cc"):
                count = len(addresses(decode_words(decode_header_bytes(field_value(raw, f)))[:4000]))
                out.add(f"{name}:n{min(count, 10) if count < 10 else '10+'}")
            continue
        value = decode_words(decode_header_bytes(field_value(raw, f)))[:2000]
        if name in _HEADER_WORDS:
            _text(value, out, "")
            if value and value.upper() == value and any(c.isalpha() for c in value):
                out.add(f"{name}:ALLCAPS")
            if "!" in value:
                out.add(f"{name}:bang")
        elif name == "from":
            for display, address in addresses(value)[:3]:
                _text(display, out, "from:")
                domain = address.rpartition("@")[2].lower()
                if domain:
                    out.add(f"from-domain:{domain}")
                    out.add(f"from-tld:{domain.rpartition('.')[2]}")
                if not display:
                    out.add("from:noname")
        elif name in _SHAPE_HEADERS:
            first = value.split()[0][:40].lower() if value.split() else ""
            out.add(f"{name}:{first}")
        elif name == "content-type":
            out.add(f"ct:{value.split(';')[0].strip().lower()[:60]}")
        elif name.startswith("x-") and not name.startswith(("x-spam", "x-virus")):
            out.add(f"hdr:{name[:40]}")


def _body(raw: bytes, out: set[str]) -> None:
    root = parse_structure(raw)
    left = MAX_TEXT
    markup_left = MAX_MARKUP_TOTAL
    texts = 0
    for part in root.walk():
        if part.children:
            continue
        ctype = part.content_type
        out.add(f"part:{ctype[:60]}")
        charset = part.params.get("charset")
        if charset:
            out.add(f"charset:{charset.lower()[:30]}")
        filename = part.disposition_params.get("filename") or part.params.get("name")
        if filename:
            ext = filename.rpartition(".")[2].lower()[:10] if "." in filename else "none"
            out.add(f"attach:{ext}")
        if ctype not in ("text/plain", "text/html") or left <= 0:
            continue
        content = part_content(raw, part, left)
        texts += 1
        if ctype == "text/html":
            text = html_to_text(content)
            if markup_left > 0:
                markup = content[:min(MAX_MARKUP, markup_left)]
                markup_left -= len(markup)
                _html_tells(markup, text, out)
            content = text
        left -= len(content)
        content = content[:MAX_TEXT]
        if "://" in content or "www." in content.casefold():  # else neither URL pattern can match
            for host in _URL.findall(content):
                _host(host, out, "url")
            content = _WHOLE_URL.sub(" ", content)
        _text(content, out, "")
    if texts == 0:
        out.add("body:notext")


def _html_tells(markup: str, text: str, out: set[str]) -> None:
    out.add("html")
    markup = markup.lower()
    if _HIDDEN.search(markup):
        out.add("html:hidden")
    images = len(_IMG.findall(markup))
    words = len(_words(text))
    if images:
        out.add(f"html:img{min(images, 5)}")
        if words < 20:
            out.add("html:imageonly")
    links = 0
    for target, shown in _HREF.findall(markup):
        links += 1
        _host(target, out, "href")
        named = _URL.search(shown)
        if named and named.group(1).lower().rstrip(".") != target.rstrip("."):
            out.add("html:linkmismatch")
    if links:
        out.add(f"html:links{min(links, 10) if links < 10 else '10+'}")
    tags = set(_TAG.findall(markup))
    for tag in ("font", "table", "center", "form", "script", "iframe", "style", "map"):
        if tag in tags:
            out.add(f"html:tag:{tag}")


def _host(host: str, out: set[str], kind: str) -> None:
    host = host.lower().rstrip(".")
    if not host:
        return
    out.add(f"{kind}:{host[:80]}")
    labels = host.split(".")
    if len(labels) > 2:
        out.add(f"{kind}:{'.'.join(labels[-2:])}")
    if host.replace(".", "").isdigit():
        out.add(f"{kind}:ipaddress")


def _words(text: str) -> list[str]:
    return (_WORD_ASCII if text.isascii() else _WORD).findall(text)


def _money(text: str) -> bool:
    if any(sign in text for sign in "$€£¥") and _MONEY_SIGN.search(text):
        return True
    folded = text.casefold()
    return any(word in folded for word in ("dollars", "usd", "rmb", "元")) and bool(_MONEY_WORD.search(text))


def _text(text: str, out: set[str], prefix: str) -> None:
    if len(out) >= MAX_TOKENS:
        return
    words = _words(text)
    tokens = dict.fromkeys(map(str.lower, words))  # distinct, in order (C loops, not a Python one per word)
    for long in [t for t in tokens if len(t) > LONG_WORD]:
        del tokens[long]
        tokens[f"skip:{long[0]}{len(long) // 10 * 10}"] = None
    tokens.update(dict.fromkeys("CAPS:" + w.lower() for w in words if w.isupper() and 4 <= len(w) <= LONG_WORD))
    room = MAX_TOKENS - len(out)
    if prefix:
        out.update(prefix + t for t in islice(tokens, room))
    else:
        out.update(islice(tokens, room))
    if len(out) >= MAX_TOKENS:
        return
    for match in () if text.isascii() else _CJK.finditer(text):
        run = match.group()
        for i in range(len(run) - 1):
            out.add(prefix + run[i:i + 2])
        if len(out) >= MAX_TOKENS:
            return
    if not prefix:
        if _money(text):
            out.add("money")
        if "%" in text and _PERCENT.search(text):
            out.add("percent")
