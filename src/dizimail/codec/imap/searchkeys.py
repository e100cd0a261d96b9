"""SEARCH criteria as a tree of values (RFC 3501 §6.4.4, RFC 9051 §6.4.4).

The parser (:mod:`dizimail.codec.imap.search`) maps every search key onto a
small set of node types so that the mail store evaluates one tree however the
client spelled it: ``FROM x`` is ``Header("FROM", "x")``, ``UNSEEN`` is
``Flag("\\Seen", False)``, ``NEW`` is ``And((Flag("\\Recent", True),
Flag("\\Seen", False)))`` and a list of keys is ``And``. Strings are already
decoded from the command's CHARSET. Header field names are upper-cased
(they compare case-insensitively, RFC 5322 §1.2.2).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Literal, TypeAlias

from dizimail.codec.imap.seqset import SequenceSet


@dataclass(frozen=True, slots=True)
class All:
    """ALL: every message (RFC 3501 §6.4.4)."""


@dataclass(frozen=True, slots=True)
class Flag:
    """A flag set (``present``) or not set.

    ``name`` is a system flag in its canonical spelling (``\\Seen``,
    ``\\Answered``, ``\\Flagged``, ``\\Deleted``, ``\\Draft``, ``\\Recent``)
    or a keyword as sent (KEYWORD / UNKEYWORD, RFC 3501 §6.4.4).
    """

    name: str
    present: bool


@dataclass(frozen=True, slots=True)
class Header:
    """A header field containing ``value`` (HEADER, FROM, TO, CC, BCC, SUBJECT; RFC 3501 §6.4.4).

    An empty ``value`` matches every message having the field.
    """

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class Text:
    """TEXT: the header or body contains ``value`` (RFC 3501 §6.4.4)."""

    value: str


@dataclass(frozen=True, slots=True)
class Body:
    """BODY: the body contains ``value`` (RFC 3501 §6.4.4)."""

    value: str


@dataclass(frozen=True, slots=True)
class DateKey:
    """BEFORE/ON/SINCE (``internal``) and SENTBEFORE/SENTON/SENTSINCE (``sent``), RFC 3501 §6.4.4.

    Dates ignore time and timezone: the internal date's own day, and the
    Date: header's day disregarding its zone.
    """

    which: Literal["internal", "sent"]
    op: Literal["before", "on", "since"]
    date: _dt.date


@dataclass(frozen=True, slots=True)
class Size:
    """LARGER / SMALLER: RFC822.SIZE strictly above / below ``n`` (RFC 3501 §6.4.4)."""

    op: Literal["larger", "smaller"]
    n: int


@dataclass(frozen=True, slots=True)
class Seq:
    """A bare sequence set: messages with these sequence numbers (RFC 3501 §6.4.4)."""

    set: SequenceSet


@dataclass(frozen=True, slots=True)
class Uid:
    """UID sequence-set (RFC 3501 §6.4.4); may be ``$`` (RFC 5182 §2)."""

    set: SequenceSet


@dataclass(frozen=True, slots=True)
class Not:
    """NOT key (RFC 3501 §6.4.4)."""

    key: SearchKey


@dataclass(frozen=True, slots=True)
class Or:
    """OR key1 key2 (RFC 3501 §6.4.4)."""

    a: SearchKey
    b: SearchKey


@dataclass(frozen=True, slots=True)
class And:
    """All of ``keys``: a parenthesised list or the keys of a search program (RFC 3501 §6.4.4)."""

    keys: tuple[SearchKey, ...]


@dataclass(frozen=True, slots=True)
class ModSeq:
    """MODSEQ: mod-sequence at least ``n`` (RFC 7162 §3.1.5); the entry name and type are ignored."""

    n: int


@dataclass(frozen=True, slots=True)
class Older:
    """OLDER: internal date more than ``seconds`` ago (RFC 5032 §3)."""

    seconds: int


@dataclass(frozen=True, slots=True)
class Younger:
    """YOUNGER: internal date at most ``seconds`` ago (RFC 5032 §3)."""

    seconds: int


SearchKey: TypeAlias = (
    All | Flag | Header | Text | Body | DateKey | Size | Seq | Uid | Not | Or | And | ModSeq | Older | Younger
)
