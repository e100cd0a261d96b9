"""The sort and thread keys of a message (RFC 5256 §2.1, §3; DISPLAYFROM/DISPLAYTO of RFC 5957 §3).

Computed once per message at ingest from attacker-controlled header text, so every function here is
linear in its input and uses no backtracking regular expression: the base subject of a 45 KB subject
of ``[a]`` blobs takes one pass, where stripping one blob per loop and matching again took seconds.
Strings are case-mapped with i;ascii-casemap (ASCII letters upper-cased, RFC 4790 §9.2), the
comparator RFC 5256 §3 prescribes, so stored keys compare by code point.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from dizimail.codec.mime.address import Group, Mailbox, parse_addresses
from dizimail.codec.mime.charsets import decode_words

_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_BLANKS = re.compile(r"\s+")  # one character class, no alternation: linear
# A blob: BLOBCHAR excludes both brackets, so a failed "]" gives back one character at a time, each
# failing at once: linear per attempt, and each attempt starts where the previous blob ended.
_BLOB = re.compile(r"\[[^\[\]]*\] *")
_MSGID = re.compile(r"<[^<>\s]+>")  # each "<" starts at most one scan, which stops at the next "<" or ">"
MAX_REFERENCES = 100  # message ids kept from References (the first and the last ones)
MAX_DATE = 1000  # characters of a Date field parsed; a valid date is a few dozen


def casemap(text: str) -> str:
    """i;ascii-casemap (RFC 4790 §9.2): ASCII letters upper-cased, everything else as is."""
    return text.translate(_UPPER)


def _ci(s: str, pos: int, word: str) -> bool:
    """Whether ``s`` has ``word`` (lower-case ASCII) at ``pos``, ignoring ASCII case."""
    return s[pos : pos + len(word)].lower() == word


def _blob_end(s: str, pos: int, end: int) -> int:
    """End of the subj-blob (``"[" *BLOBCHAR "]" *WSP``) at ``pos``, or -1 (RFC 5256 §5)."""
    m = _BLOB.match(s, pos, end)
    return -1 if m is None else m.end()


def _refwd_end(s: str, pos: int, end: int) -> int:
    """End of the subj-refwd (``("re" / ("fw" ["d"])) *WSP [subj-blob] ":"``) at ``pos``, or -1."""
    if _ci(s, pos, "re"):
        pos += 2
    elif _ci(s, pos, "fwd"):
        pos += 3
    elif _ci(s, pos, "fw"):
        pos += 2
    else:
        return -1
    while pos < end and s[pos] == " ":
        pos += 1
    blob = _blob_end(s, pos, end)
    if blob >= 0:
        pos = blob
    return pos + 1 if pos < end and s[pos] == ":" else -1


def base_subject(subject: str) -> tuple[str, bool]:
    """The base subject of RFC 5256 §2.1, case-mapped, and whether the extraction removed a reply or
    forward marker ("Re:", "Fwd:", "(fwd)", "[fwd: ...]"), which THREAD needs.

    ``subject`` is the decoded field value (step 1's encoded words already decoded). Linear: every
    step moves ``start`` forward or ``end`` back. Step 3 scans the blobs before a "re"/"fw"; when
    none follows, step 4 would remove the first blob and step 3 scan the same blobs again and fail at
    the same place, so all those blobs are removed at once (keeping the last one when nothing
    follows it: step 4 never leaves an empty subject).
    """
    s = _BLANKS.sub(" ", subject)  # step 1: white space runs become one space
    start, end = 0, len(s)
    reply = False
    while True:
        while True:  # step 2: trailing "(fwd)" and white space
            if end > start and s[end - 1] == " ":
                end -= 1
            elif end - start >= 5 and s[end - 5 : end].lower() == "(fwd)":
                end -= 5
                reply = True
            else:
                break
        while start < end:  # steps 3 to 5
            if s[start] == " ":  # subj-leader's WSP alternative
                start += 1
                continue
            blobs = []  # where each blob of the leading run starts
            pos = start
            while (after := _blob_end(s, pos, end)) >= 0:
                blobs.append(pos)
                pos = after
            refwd = _refwd_end(s, pos, end)
            if refwd >= 0:  # step 3: *subj-blob subj-refwd
                start, reply = refwd, True
                continue
            if not blobs:
                break
            # step 4, as often as it applies: remove blobs while something follows each
            start = pos if pos < end else blobs[-1]
            break
        if end - start >= 6 and _ci(s, start, "[fwd:") and s[end - 1] == "]":  # step 6
            start, end, reply = start + 5, end - 1, True
            continue
        return casemap(s[start:end]), reply


def sent_date(value: str) -> tuple[float, int] | None:
    """The Date field as a UTC timestamp (for SORT DATE, RFC 5256 §3) and the day as written, an
    ordinal (``date.toordinal``; SENTBEFORE/SENTON/SENTSINCE disregard time and zone, RFC 3501
    §6.4.4). None when the field does not parse."""
    value = value[:MAX_DATE]
    try:
        when: datetime = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    try:
        stamp = (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).timestamp()  # -0000: UTC
        return stamp, when.date().toordinal()
    except (ValueError, OverflowError, OSError):
        return None


def first_address(value: str, display: bool) -> str:
    """The SORT key of an address field, case-mapped: the addr-mailbox (local part) of the first
    address (RFC 5256 §3 FROM, TO, CC; a group's name for group syntax), or for DISPLAYFROM and
    DISPLAYTO its display name, decoded, falling back to the address (RFC 5957 §3).

    ``value`` is the raw field value (8-bit text decoded, encoded words not), so that a comma or
    quote inside an encoded display name cannot change how the list splits."""
    items = parse_addresses(value)
    if not items:
        return ""
    first = items[0]
    if isinstance(first, Group):
        return casemap(decode_words(first.name))
    assert isinstance(first, Mailbox)
    if not display:
        return casemap(first.local or "")
    name = decode_words(first.name or "").strip()
    if name:
        return casemap(name)
    return casemap(f"{first.local or ''}@{first.domain or ''}" if first.domain else first.local or "")


def message_ids(value: str) -> list[str]:
    """The msg-ids in a Message-ID, In-Reply-To or References value (RFC 5322 §3.6.4), in order."""
    return _MSGID.findall(value)


def references(refs: str, in_reply_to: str) -> tuple[str, ...]:
    """The parent chain THREAD=REFERENCES links (RFC 5256 §2.2 step 1A): References, else the first
    id of In-Reply-To. At most MAX_REFERENCES ids: the first (the thread's root) and the last ones
    (the nearest ancestors), so that a hostile field of thousands of ids costs no more than a long
    real thread."""
    ids = message_ids(refs) or message_ids(in_reply_to)[:1]
    if len(ids) > MAX_REFERENCES:
        ids = ids[:1] + ids[-(MAX_REFERENCES - 1):]
    return tuple(ids)
