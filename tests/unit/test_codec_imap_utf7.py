"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dizimail.codec.imap.utf7 import decode_mutf7, encode_mutf7


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("INBOX", "INBOX"),
        ("", ""),
        ("&", "&-"),
        ("a&b", "a&-b"),
        ("已发送/2026年", "&XfJT0ZAB-/2026&XnQ-"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("é&", "&AOk-&-"),
        ("tab\there", "tab&AAk-here"),
        ("😀", "&2D3eAA-"),
    ],
)
def test_encode_and_decode_known_names(text: str, wire: str) -> None:
    assert encode_mutf7(text) == wire
    assert decode_mutf7(wire) == text


@pytest.mark.parametrize(
    "wire",
    [
        "&",  # "&" never closed
        "a&b",
        "&XfJT0ZAB",  # run not closed
        "&AGE-",  # "a" is printable ASCII and must be direct
        "&ACY-",  # "&" encoded instead of "&-"
        "&AOk-&AOk-",  # two adjacent runs: the encoder merges them
        "&AOl-",  # non-zero pad bits
        "&AO-",  # truncated: 12 bits is no UTF-16 unit
        "&2D0-",  # lone high surrogate
        "&/w8-",  # "/" is not modified base64
        "café",  # raw 8-bit
        "a\tb",  # raw control character
        "&=-",
    ],
)
def test_decode_refuses_malformed_or_non_canonical(wire: str) -> None:
    with pytest.raises(ValueError):
        decode_mutf7(wire)


def test_encode_refuses_lone_surrogates() -> None:
    with pytest.raises(ValueError):
        encode_mutf7("\ud800")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
def test_round_trip_for_any_text(text: str) -> None:
    wire = encode_mutf7(text)
    assert all(" " <= ch <= "~" for ch in wire)
    assert decode_mutf7(wire) == text


def test_names_of_ordinary_length_are_kept_and_refused_ones_refused_again() -> None:
    """Kept: a session names the same mailboxes again and again. A long name (a hostile client's) is
    worked out again rather than kept, and a malformed one is refused every time, never kept."""
    kept = decode_mutf7.kept  # type: ignore[attr-defined]
    kept.cache_clear()
    assert decode_mutf7("&XfJT0ZAB-") == decode_mutf7("&XfJT0ZAB-") == "已发送"
    assert kept.cache_info().hits == 1
    long_name = "a" * 257
    assert decode_mutf7(long_name) == encode_mutf7(long_name) == long_name
    assert kept.cache_info().currsize == 1
    for _ in range(2):
        with pytest.raises(ValueError):
            decode_mutf7("&Jjo")
    assert kept.cache_info().currsize == 1
