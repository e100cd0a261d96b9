"""Sequence sets (RFC 3501 §9 ``sequence-set``, RFC 9051 §9, RFC 5182 ``$``).

:class:`SequenceSet` keeps a set as written (ranges with ``*`` as ``None``)
and resolves it only against a known mailbox size, so a hostile
``1:4294967295`` never becomes a list inside the parser.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

MAX_SEQUENCE_SET = 65536  # characters; longer sets are refused before any work
CACHED_SET = 2048  # characters: sets up to this long are parsed once and kept (a list page's 50 UIDs)
MAX_NUMBER = 2**32 - 1  # RFC 3501 §9 nz-number is an unsigned 32-bit integer

Bound: TypeAlias = int | None
"""One end of a range: a number, or ``None`` for ``*``."""


def _bound(text: str) -> Bound:
    if text == "*":
        return None
    if not (0 < len(text) <= 10 and text.isascii() and text.isdigit() and text[0] != "0") or int(text) > MAX_NUMBER:
        raise ValueError(f"bad number in sequence set: {text[:20]!r}")
    return int(text)


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A sequence set (RFC 3501 §9 ``sequence-set``, RFC 9051 §9), or ``$`` (RFC 5182 §2).

    ``ranges`` holds ``(a, b)`` pairs as written, ``b`` may be below ``a``
    and ``None`` stands for ``*``; a single number ``n`` is ``(n, n)``.
    ``uses_saved`` is true for ``$``, the result saved by SEARCH RETURN (SAVE):
    the session substitutes it before resolving, and ``ranges`` is empty.

    Resolving is against ``max_value``: the number of messages for sequence
    numbers, the highest UID for UIDs. ``*`` is ``max_value`` and ranges are
    clipped to ``1..max_value``, so ``559:*`` with ``max_value=3`` is ``[3]``
    (RFC 3501 §6.4.8: ``n:*`` always includes the last message). For an empty
    mailbox (``max_value == 0``) every set resolves to ``[]``; whether that
    is an error (RFC 9051 §6.4.4 lets the server answer BAD for ``*`` there,
    and sequence numbers above EXISTS are invalid, see :meth:`exceeds`) is
    the session's decision.
    """

    ranges: tuple[tuple[Bound, Bound], ...]
    uses_saved: bool = False

    @classmethod
    def parse(cls, text: str) -> SequenceSet:
        """Parse ``1,3:5,7:*`` or ``$``; ValueError when malformed. Linear in ``len(text)``. Short sets
        are kept (the last 256): a client showing a list page sends the same one again and again."""
        if len(text) <= CACHED_SET:
            return _parse_kept(text)
        return cls._parse(text)

    @classmethod
    def _parse(cls, text: str) -> SequenceSet:
        if len(text) > MAX_SEQUENCE_SET:
            raise ValueError("sequence set too long")
        if text == "$":
            return cls((), True)
        ranges: list[tuple[Bound, Bound]] = []
        for item in text.split(","):
            first, colon, last = item.partition(":")
            a = _bound(first)
            ranges.append((a, _bound(last) if colon else a))
        return cls(tuple(ranges))

    @classmethod
    def of(cls, numbers: Sequence[int]) -> SequenceSet:
        """A set of the given numbers, compressed into ranges."""
        ranges: list[tuple[Bound, Bound]] = []
        for n in sorted(set(numbers)):
            if ranges and ranges[-1][1] == n - 1:
                ranges[-1] = (ranges[-1][0], n)
            else:
                ranges.append((n, n))
        return cls(tuple(ranges))

    def __str__(self) -> str:
        """The wire form, ``$`` or ``a:b,c``."""
        if self.uses_saved:
            return "$"

        def text(b: Bound) -> str:
            return "*" if b is None else str(b)

        return ",".join(text(a) if a == b else f"{text(a)}:{text(b)}" for a, b in self.ranges)

    def _check(self) -> None:
        if self.uses_saved:
            raise ValueError("'$' must be replaced by the saved search result before use")

    def normalized(self, max_value: int) -> list[tuple[int, int]]:
        """Sorted, merged, clipped ``(low, high)`` ranges; what a store should query by.

        Unlike :meth:`resolve` this stays small however large ``max_value`` is.
        """
        self._check()
        spans: list[tuple[int, int]] = []
        for a, b in self.ranges:
            lo = max_value if a is None else a
            hi = max_value if b is None else b
            if lo > hi:
                lo, hi = hi, lo
            lo, hi = max(lo, 1), min(hi, max_value)
            if lo <= hi:
                spans.append((lo, hi))
        spans.sort()
        merged: list[tuple[int, int]] = []
        for lo, hi in spans:
            if merged and lo <= merged[-1][1] + 1:
                if hi > merged[-1][1]:
                    merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        return merged

    def resolve(self, max_value: int) -> list[int]:
        """Sorted unique numbers in ``1..max_value`` (see the class docstring for ``*``).

        Use it for message sequence numbers; for sparse UIDs prefer
        :meth:`select` or :meth:`normalized`, which never build a list of the range.
        """
        out: list[int] = []
        for lo, hi in self.normalized(max_value):
            out.extend(range(lo, hi + 1))
        return out

    def select(self, values: Sequence[int], max_value: int | None = None) -> list[int]:
        """The members of sorted ``values`` (e.g. a mailbox's UIDs) inside the set.

        ``max_value`` defaults to the last of ``values`` (``*`` is the highest UID in use).
        """
        if max_value is None:
            max_value = values[-1] if values else 0
        out: list[int] = []
        for lo, hi in self.normalized(max_value):
            out.extend(values[bisect.bisect_left(values, lo) : bisect.bisect_right(values, hi)])
        return out

    def contains(self, n: int, max_value: int) -> bool:
        """Whether ``n`` is in the set resolved against ``max_value``."""
        self._check()
        if not 1 <= n <= max_value:
            return False
        for a, b in self.ranges:
            lo = max_value if a is None else a
            hi = max_value if b is None else b
            if min(lo, hi) <= n <= max(lo, hi):
                return True
        return False

    def exceeds(self, max_value: int) -> bool:
        """True when an explicit number is above ``max_value`` (invalid for sequence numbers, RFC 9051 §9)."""
        return any(b is not None and b > max_value for r in self.ranges for b in r)


@functools.lru_cache(maxsize=256)
def _parse_kept(text: str) -> SequenceSet:
    return SequenceSet._parse(text)  # errors are not kept: ValueError propagates every time
