"""Sequence sets and FETCH item names (RFC 3501 §9, §6.4.5, §7.4.2; RFC 5182)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dizimail.codec.imap.seqset import MAX_SEQUENCE_SET
from dizimail.codec.imap.types import BodySection, FetchItem, SequenceSet


@pytest.mark.parametrize(
    ("text", "ranges"),
    [
        ("1", ((1, 1),)),
        ("*", ((None, None),)),
        ("1:*", ((1, None),)),
        ("5:2", ((5, 2),)),
        ("1,3:5,*:7", ((1, 1), (3, 5), (None, 7))),
        ("4294967295", ((4294967295, 4294967295),)),
    ],
)
def test_parse_keeps_ranges_as_written(text: str, ranges: tuple[tuple[int | None, int | None], ...]) -> None:
    seq = SequenceSet.parse(text)
    assert seq.ranges == ranges
    assert not seq.uses_saved
    assert str(seq) == text


def test_dollar_is_the_saved_result() -> None:
    seq = SequenceSet.parse("$")
    assert seq.uses_saved and seq.ranges == ()
    assert str(seq) == "$"
    with pytest.raises(ValueError):
        seq.resolve(10)


@pytest.mark.parametrize(
    "text",
    ["", "0", "01", "1:", ":1", "1,,2", "1,", "a", "1:2:3", "4294967296", "99999999999999999999", "$,1", "1:$", "-1"],
)
def test_parse_refuses_malformed_sets(text: str) -> None:
    with pytest.raises(ValueError):
        SequenceSet.parse(text)


def test_parse_refuses_absurd_length_before_work() -> None:
    with pytest.raises(ValueError, match="too long"):
        SequenceSet.parse("1," * MAX_SEQUENCE_SET)


def test_huge_range_is_never_expanded_by_parsing() -> None:
    seq = SequenceSet.parse("1:4294967295")
    assert seq.normalized(4294967295) == [(1, 4294967295)]
    assert seq.contains(4000000000, 4294967295)
    assert seq.select([5, 4000000000]) == [5, 4000000000]  # works on the values present, no expansion


@pytest.mark.parametrize(
    ("text", "max_value", "numbers"),
    [
        ("1:*", 5, [1, 2, 3, 4, 5]),
        ("*", 5, [5]),
        ("*:3", 5, [3, 4, 5]),
        ("5:2", 9, [2, 3, 4, 5]),
        ("2,4:6,5,1", 9, [1, 2, 4, 5, 6]),
        ("3:10", 5, [3, 4, 5]),
        ("559:*", 3, [3]),  # RFC 3501 §6.4.8: n:* always includes the last message
        ("7", 5, []),
        ("1:*", 0, []),  # empty mailbox
        ("*", 0, []),
    ],
)
def test_resolve_sorts_dedupes_and_clips(text: str, max_value: int, numbers: list[int]) -> None:
    seq = SequenceSet.parse(text)
    assert seq.resolve(max_value) == numbers
    assert [n for n in range(0, max_value + 3) if seq.contains(n, max_value)] == numbers


def test_normalized_merges_adjacent_ranges() -> None:
    assert SequenceSet.parse("1:3,4,6:8,7:10,*").normalized(20) == [(1, 4), (6, 10), (20, 20)]


def test_select_picks_sparse_uids_without_expanding() -> None:
    uids = [3, 10, 11, 4000000000]
    assert SequenceSet.parse("1:*").select(uids) == uids
    assert SequenceSet.parse("5:11,*").select(uids) == [10, 11, 4000000000]
    assert SequenceSet.parse("4000000001:*").select(uids) == [4000000000]
    assert SequenceSet.parse("1:*").select([]) == []


def test_exceeds_flags_explicit_numbers_above_max() -> None:
    assert SequenceSet.parse("1:7").exceeds(5)
    assert not SequenceSet.parse("1:*,5").exceeds(5)


@given(st.lists(st.integers(min_value=1, max_value=10_000), max_size=50))
def test_of_round_trips(numbers: list[int]) -> None:
    seq = SequenceSet.of(numbers)
    assert seq.resolve(10_000) == sorted(set(numbers))
    if numbers:
        assert SequenceSet.parse(str(seq)) == seq


@pytest.mark.parametrize(
    ("item", "name"),
    [
        (FetchItem("FLAGS"), "FLAGS"),
        (FetchItem("BODY"), "BODY"),
        (FetchItem("BODY", BodySection()), "BODY[]"),
        (FetchItem("BODY", BodySection(), peek=True), "BODY[]"),
        (FetchItem("BODY", BodySection((1, 2), "MIME")), "BODY[1.2.MIME]"),
        (FetchItem("BODY", BodySection((), "TEXT"), (0, 100)), "BODY[TEXT]<0>"),
        (
            FetchItem("BODY", BodySection((1,), "HEADER.FIELDS", ("SUBJECT", "FROM")), (0, 10), peek=True),
            "BODY[1.HEADER.FIELDS (SUBJECT FROM)]<0>",
        ),
        (
            FetchItem("BODY", BodySection((), "HEADER.FIELDS.NOT", ("X-A", "Odd]"))),
            "BODY[HEADER.FIELDS.NOT (X-A Odd])]",
        ),
        (FetchItem("BINARY", BodySection((3,)), (10, 5), peek=True), "BINARY[3]<10>"),
        (FetchItem("BINARY.SIZE", BodySection((1, 1))), "BINARY.SIZE[1.1]"),
    ],
)
def test_response_name_drops_peek_and_partial_length(item: FetchItem, name: str) -> None:
    assert item.response_name() == name
