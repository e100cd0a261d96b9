"""RFC 1939 / 2449 / 2595 / 5034 POP3 codec, tested with byte literals."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dizimail.codec.pop3 import (
    Auth,
    Capa,
    Dele,
    DotStuffer,
    List,
    Noop,
    Pass,
    Pop3SyntaxError,
    Quit,
    Retr,
    Rset,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
    parse_command,
    top_lines,
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"USER alice", User("alice")),
        (b"user alice@example.com", User("alice@example.com")),
        (b"USER alice ", User("alice")),
        ("USER 用户@例子.测试".encode(), User("用户@例子.测试")),
        (b"PASS secret", Pass("secret")),
        (b"PASS pass phrase with spaces ", Pass("pass phrase with spaces ")),
        (b"PASS  leading", Pass(" leading")),
        (b"STAT", Stat()),
        (b"stat", Stat()),
        (b"LIST", List(None)),
        (b"LIST 1", List(1)),
        (b"UIDL", Uidl(None)),
        (b"uidl 42", Uidl(42)),
        (b"RETR 7", Retr(7)),
        (b"TOP 3 0", Top(3, 0)),
        (b"TOP 3 10", Top(3, 10)),
        (b"DELE 2147483647", Dele(2147483647)),
        (b"RSET", Rset()),
        (b"NOOP", Noop()),
        (b"QUIT", Quit()),
        (b"CAPA", Capa()),
        (b"STLS", Stls()),
        (b"AUTH", Auth(None, None)),
        (b"AUTH plain", Auth("PLAIN", None)),
        (b"AUTH PLAIN AGFsaWNlAHNlY3JldA==", Auth("PLAIN", "AGFsaWNlAHNlY3JldA==")),
        (b"AUTH PLAIN =", Auth("PLAIN", "=")),
    ],
)
def test_commands_parse(line: bytes, expected: object) -> None:
    assert parse_command(line) == expected


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (b"", "unknown command"),
        (b"APOP alice 0123", "unknown command"),
        (b"XTND", "unknown command"),
        (b"USER", "missing argument"),
        (b"USER ", "missing argument"),
        (b"PASS", "missing argument"),
        (b"PASS ", "missing argument"),
        (b"PASS a\x00b", "control characters in command"),
        (b"USER \xff", "invalid UTF-8 in command"),
        (b"RETR", "missing argument"),
        (b"RETR 0", "bad message number"),
        (b"RETR -1", "bad message number"),
        (b"RETR +1", "bad message number"),
        (b"RETR 1x", "bad message number"),
        (b"RETR 2147483648", "bad message number"),
        (b"RETR 99999999999", "bad message number"),
        (b"RETR 1 2", "too many arguments"),
        (b"DELE 0", "bad message number"),
        (b"LIST 0", "bad message number"),
        (b"LIST 1 2", "too many arguments"),
        (b"UIDL x", "bad message number"),
        (b"TOP 1", "missing argument"),
        (b"TOP 0 1", "bad message number"),
        (b"TOP 1 -1", "bad number of lines"),
        (b"TOP 1 2147483648", "bad number of lines"),
        (b"TOP 1 2 3", "too many arguments"),
        (b"STAT 1", "too many arguments"),
        (b"QUIT now", "too many arguments"),
        (b"STLS x", "too many arguments"),
        (b"AUTH PL@IN", "bad mechanism name"),
        (b"AUTH PLAIN a b", "too many arguments"),
    ],
)
def test_bad_commands_raise_with_short_text(line: bytes, text: str) -> None:
    with pytest.raises(Pop3SyntaxError) as info:
        parse_command(line)
    assert info.value.text == text


def stuff(*chunks: bytes) -> bytes:
    stuffer = DotStuffer()
    return b"".join(stuffer.feed(c) for c in chunks) + stuffer.finish()


def test_dot_stuffer_stuffs_lines_starting_with_dot() -> None:
    assert stuff(b".a\r\nb\r\n..c\r\n.\r\n") == b"..a\r\nb\r\n...c\r\n..\r\n.\r\n"


def test_dot_stuffer_across_chunk_boundaries() -> None:
    assert stuff(b"a\r\n", b".b\r\n") == b"a\r\n..b\r\n.\r\n"
    assert stuff(b"a\r", b"\n", b".", b"b\r\n") == b"a\r\n..b\r\n.\r\n"
    assert stuff(b"a.", b".b\r\n") == b"a..b\r\n.\r\n"


def test_dot_stuffer_treats_bare_lf_as_line_start() -> None:
    assert stuff(b"a\n.b\r\n") == b"a\n..b\r\n.\r\n"


def test_dot_stuffer_passes_other_bytes_unchanged() -> None:
    assert stuff(b"a\rb.\r\n\x00\xff\r\n") == b"a\rb.\r\n\x00\xff\r\n.\r\n"


def test_dot_stuffer_finish_adds_crlf_only_when_needed() -> None:
    assert stuff() == b".\r\n"
    assert stuff(b"") == b".\r\n"
    assert stuff(b"a\r\n") == b"a\r\n.\r\n"
    assert stuff(b"a") == b"a\r\n.\r\n"
    assert stuff(b"a\r") == b"a\r\r\n.\r\n"
    assert stuff(b"a\n") == b"a\n\r\n.\r\n"
    assert stuff(b"a\r", b"\n") == b"a\r\n.\r\n"


@given(st.binary(max_size=200), st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_dot_stuffer_output_is_independent_of_chunking(data: bytes, cuts: list[int]) -> None:
    offsets = [0, *sorted(c for c in cuts if c <= len(data)), len(data)]
    assert stuff(*(data[a:b] for a, b in itertools.pairwise(offsets))) == stuff(data)


MESSAGE = b"From: a@b\r\nSubject: s\r\n\r\nline 1\r\nline 2\r\n\r\nline 4\r\n"


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, b"From: a@b\r\nSubject: s\r\n\r\n"),
        (1, b"From: a@b\r\nSubject: s\r\n\r\nline 1\r\n"),
        (3, b"From: a@b\r\nSubject: s\r\n\r\nline 1\r\nline 2\r\n\r\n"),
        (4, MESSAGE),
        (100, MESSAGE),
        (2**31 - 1, MESSAGE),
    ],
)
def test_top_lines(n: int, expected: bytes) -> None:
    assert top_lines(MESSAGE, n) == expected


def test_top_lines_edge_cases() -> None:
    assert top_lines(b"Subject: only header\r\n", 5) == b"Subject: only header\r\n"
    assert top_lines(b"\r\nbody\r\nmore\r\n", 1) == b"\r\nbody\r\n"
    assert top_lines(b"H: v\r\n\r\nno final crlf", 1) == b"H: v\r\n\r\nno final crlf"
    assert top_lines(b"H: v\r\n\r\nno final crlf", 0) == b"H: v\r\n\r\n"
    with pytest.raises(ValueError):
        top_lines(MESSAGE, -1)
