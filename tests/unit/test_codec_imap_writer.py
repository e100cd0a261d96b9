"""IMAP response builders (RFC 9051 §4, §7, §9)."""

from __future__ import annotations

import pytest

from dizimail.codec.imap.writer import (
    astring,
    continuation,
    flag_list,
    imap_date,
    literal,
    mailbox,
    nstring,
    ordered_set_string,
    quote,
    sequence_set_string,
    tagged,
    untagged,
)


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        ("hello world", b'"hello world"'),
        (b"", b'""'),
        ('say "hi" \\o/', b'"say \\"hi\\" \\\\o/"'),
        ("two\r\nlines", b"{10}\r\ntwo\r\nlines"),
        (b"nul\x00", b"{4}\r\nnul\x00"),
        ("电厂", b"{6}\r\n\xe7\x94\xb5\xe5\x8e\x82"),
    ],
)
def test_quote_or_literal(value: str | bytes, wire: bytes) -> None:
    assert quote(value) == wire


def test_quote_utf8_when_enabled() -> None:
    assert quote("电厂", utf8=True) == '"电厂"'.encode()
    assert quote(b"\xff", utf8=True) == b"{1}\r\n\xff"
    assert quote(b"\xe7\x94", utf8=True) == b"{2}\r\n\xe7\x94"


def test_long_strings_become_literals() -> None:
    assert quote("x" * 2000).startswith(b"{2000}\r\n")


def test_nstring_astring_literal() -> None:
    assert nstring(None) == b"NIL"
    assert nstring(b"x") == b'"x"'
    assert astring("INBOX") == b"INBOX"
    assert astring("a]b") == b"a]b"
    assert astring("Sent Items") == b'"Sent Items"'
    assert astring("NIL") == b'"NIL"'
    assert astring("") == b'""'
    assert literal(b"abc") == b"{3}\r\nabc"
    assert literal(b"a\x00", binary=True) == b"~{2}\r\na\x00"


def test_mailbox_names() -> None:
    assert mailbox("已发送") == b"&XfJT0ZAB-"
    assert mailbox("Sent Items") == b'"Sent Items"'
    assert mailbox("已发送", utf8=True) == '"已发送"'.encode()


def test_flag_list() -> None:
    assert flag_list(["\\Seen", "\\Flagged"]) == b"(\\Seen \\Flagged)"
    assert flag_list([]) == b"()"


@pytest.mark.parametrize(
    ("numbers", "text"),
    [([], ""), ([5], "5"), ([1, 2, 3, 5, 7, 8, 9], "1:3,5,7:9"), ([9, 1, 2, 2, 3], "1:3,9")],
)
def test_sequence_set_string(numbers: list[int], text: str) -> None:
    assert sequence_set_string(numbers) == text


@pytest.mark.parametrize(
    ("numbers", "text"),
    [([], ""), ([7], "7"), ([5, 3, 4, 2, 1], "5,3:4,2,1"), ([1, 2, 3, 5], "1:3,5"), ([3, 4, 5, 1, 2], "3:5,1:2"),
     ([4, 3, 2], "4,3,2")],
)
def test_ordered_set_string_keeps_the_sort_order(numbers: list[int], text: str) -> None:
    """ESORT results (RFC 5267 §3.2): only ascending runs become ranges."""
    assert ordered_set_string(numbers) == text


def test_imap_date() -> None:
    ts = 1795882387  # 2026-11-28 16:13:07 UTC
    assert imap_date(ts) == "28-Nov-2026 16:13:07 +0000"
    assert imap_date(ts, 480) == "29-Nov-2026 00:13:07 +0800"
    assert imap_date(ts, -330) == "28-Nov-2026 10:43:07 -0530"
    assert imap_date(0) == "01-Jan-1970 00:00:00 +0000"


def test_status_lines() -> None:
    assert untagged("3 EXISTS") == b"* 3 EXISTS\r\n"
    assert tagged("a1", "OK", "done") == b"a1 OK done\r\n"
    assert tagged("a1", "NO", "too big", "TOOBIG") == b"a1 NO [TOOBIG] too big\r\n"
    assert continuation() == b"+ Ready\r\n"
