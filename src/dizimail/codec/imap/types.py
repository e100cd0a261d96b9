"""Value types shared by the IMAP parser and the session (RFC 3501 §9, RFC 9051 §9).

:class:`FetchItem` and :class:`BodySection` describe one FETCH attribute.
:class:`SequenceSet` (:mod:`~dizimail.codec.imap.seqset`) and the search-key
tree (:mod:`~dizimail.codec.imap.searchkeys`) are re-exported, so this is the
one module to import IMAP values from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dizimail.codec.imap.searchkeys import (
    All,
    And,
    Body,
    DateKey,
    Flag,
    Header,
    ModSeq,
    Not,
    Older,
    Or,
    SearchKey,
    Seq,
    Size,
    Text,
    Uid,
    Younger,
)
from dizimail.codec.imap.seqset import MAX_NUMBER, MAX_SEQUENCE_SET, Bound, SequenceSet

# ASCII 0x21-0x7e but (){%*"\ (a negated class reaching U+10FFFF took re 4 ms to compile)
_ASTRING_ATOM = re.compile("[" + "".join(f"\\x{c:02x}" for c in range(0x21, 0x7F) if chr(c) not in '(){%*"\\') + "]+")


def _astring_text(value: str) -> str:
    if _ASTRING_ATOM.fullmatch(value) is not None:
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class BodySection:
    """A body section (RFC 3501 §6.4.5 ``section``, RFC 9051 §6.4.5).

    ``part`` are the part numbers (``()`` is the whole message), ``kind`` is
    ``""``, ``"HEADER"``, ``"HEADER.FIELDS"``, ``"HEADER.FIELDS.NOT"``,
    ``"TEXT"`` or ``"MIME"``, and ``fields`` the header names as sent (for
    the two HEADER.FIELDS kinds), so they echo back unchanged.
    """

    part: tuple[int, ...] = ()
    kind: str = ""
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        """The text between the brackets, e.g. ``1.2.HEADER.FIELDS (SUBJECT FROM)``."""
        spec = ".".join(str(n) for n in self.part)
        if self.kind:
            spec = f"{spec}.{self.kind}" if spec else self.kind
        if self.kind.startswith("HEADER.FIELDS"):
            spec += " (" + " ".join(_astring_text(f) for f in self.fields) + ")"
        return spec


SIMPLE_FETCH_ITEMS = frozenset(
    {
        "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY", "BODYSTRUCTURE", "UID", "MODSEQ",
        "RFC822", "RFC822.HEADER", "RFC822.TEXT", "EMAILID", "THREADID", "SAVEDATE", "PREVIEW",
    }
)  # fmt: skip
"""Attributes without a section: RFC 3501 §6.4.5, MODSEQ (RFC 7162 §3.1.4.1),
EMAILID/THREADID (RFC 8474 §5), SAVEDATE (RFC 8514 §4), PREVIEW (RFC 8970 §3)."""


@dataclass(frozen=True, slots=True)
class FetchItem:
    """One FETCH attribute (RFC 3501 §6.4.5, RFC 9051 §6.4.5, RFC 3516 §4.2 BINARY).

    ``name`` is one of :data:`SIMPLE_FETCH_ITEMS` (with ``section`` None),
    or ``BODY`` / ``BINARY`` / ``BINARY.SIZE`` with a ``section``; BODY.PEEK
    and BINARY.PEEK are ``peek=True``. ``BODY`` without a section is the
    body structure; ``BODY[]`` has ``section=BodySection()``. ``partial`` is
    ``(origin, count)`` from ``<origin.count>``. BINARY sections carry only
    part numbers.
    """

    name: str
    section: BodySection | None = None
    partial: tuple[int, int] | None = None
    peek: bool = False

    def response_name(self) -> str:
        """The item name in the FETCH response (RFC 3501 §7.4.2).

        ``.PEEK`` is dropped and a partial shows its origin only:
        ``BODY.PEEK[1.HEADER.FIELDS (SUBJECT FROM)]<0.100>`` answers as
        ``BODY[1.HEADER.FIELDS (SUBJECT FROM)]<0>``.
        """
        if self.section is None:
            return self.name
        out = f"{self.name}[{self.section}]"
        if self.partial is not None:
            out += f"<{self.partial[0]}>"
        return out


__all__ = [
    "MAX_NUMBER",
    "MAX_SEQUENCE_SET",
    "SIMPLE_FETCH_ITEMS",
    "All",
    "And",
    "Body",
    "BodySection",
    "Bound",
    "DateKey",
    "FetchItem",
    "Flag",
    "Header",
    "ModSeq",
    "Not",
    "Older",
    "Or",
    "SearchKey",
    "Seq",
    "SequenceSet",
    "Size",
    "Text",
    "Uid",
    "Younger",
]
