"""IMAP framing: lines, literals, limits and special modes (RFC 9051 §2.2, §4.3, §7.5; RFC 7888; RFC 2177)."""

from __future__ import annotations

import pytest

from dizimail.codec.imap import commands as c
from dizimail.codec.imap.events import (
    CommandReady,
    Event,
    IdleDone,
    LiteralTooLarge,
    Malformed,
    NeedContinuation,
    SaslResponse,
)
from dizimail.codec.imap.parser import ImapParser
from dizimail.codec.imap.types import FetchItem, SequenceSet


def drain(parser: ImapParser) -> list[Event]:
    out = []
    while (event := parser.next()) is not None:
        out.append(event)
    return out


def run(data: bytes, **limits: int) -> list[Event]:
    parser = ImapParser(**limits)
    parser.feed(data)
    return drain(parser)


def run_split(data: bytes, chunks: list[int], **limits: int) -> list[Event]:
    parser = ImapParser(**limits)
    out: list[Event] = []
    start = 0
    for end in [*chunks, len(data)]:
        parser.feed(data[start:end])
        out.extend(drain(parser))
        start = end
    return out


STREAM = (
    b"a1 LOGIN {5}\r\nalice {6+}\r\nsecret\r\n"
    b"a2 APPEND INBOX (\\Seen) {7-}\r\nab\r\n{3}\r\n"
    b"a3 NOOP\r\n"
    b"a4 SEARCH CHARSET UTF-8 SUBJECT {6}\r\n\xe7\x94\xb5\xe5\x8e\x82\r\n"
)
EXPECTED: list[Event] = [
    NeedContinuation("a1", 5, "LOGIN"),
    CommandReady("a1", c.Login("alice", "secret")),
    CommandReady("a2", c.Append("INBOX", (c.AppendMessage(("\\Seen",), None, b"ab\r\n{3}"),))),
    CommandReady("a3", c.Noop()),
    NeedContinuation("a4", 6, "SEARCH"),
]


def test_stream_in_one_piece() -> None:
    events = run(STREAM)
    assert events[:5] == EXPECTED
    assert isinstance(events[5], CommandReady) and events[5].tag == "a4"
    assert len(events) == 6


def test_stream_split_at_every_byte_boundary() -> None:
    whole = run(STREAM)
    for cut in range(1, len(STREAM)):
        assert run_split(STREAM, [cut]) == whole, cut


def test_stream_fed_byte_by_byte() -> None:
    assert run_split(STREAM, list(range(1, len(STREAM)))) == run(STREAM)


def test_literal_body_is_never_read_as_a_command() -> None:
    events = run(b"a APPEND INBOX {16+}\r\nb LOGOUT\r\n{99}\r\n\r\nc NOOP\r\n")
    assert events == [
        CommandReady("a", c.Append("INBOX", (c.AppendMessage((), None, b"b LOGOUT\r\n{99}\r\n"),))),
        CommandReady("c", c.Noop()),
    ]


def test_multiappend_with_sync_literals() -> None:
    parser = ImapParser()
    parser.feed(b"m APPEND Drafts (\\Draft) {3}\r\n")
    assert drain(parser) == [NeedContinuation("m", 3, "APPEND")]
    parser.feed(b"one {3}\r\n")
    assert drain(parser) == [NeedContinuation("m", 3, "APPEND")]
    parser.feed(b"two\r\n")
    assert drain(parser) == [
        CommandReady(
            "m", c.Append("Drafts", (c.AppendMessage(("\\Draft",), None, b"one"), c.AppendMessage((), None, b"two")))
        )
    ]


def test_uid_command_name_in_continuation() -> None:
    assert run(b"u UID SEARCH TEXT {3}\r\n") == [NeedContinuation("u", 3, "UID SEARCH")]


def test_bare_lf_ends_a_line() -> None:
    assert run(b"a NOOP\nb CHECK\r\n") == [CommandReady("a", c.Noop()), CommandReady("b", c.Check())]


# ---------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\r\n", Malformed(None, "empty command line")),
        (b"NOOP\r\n", Malformed("NOOP", "missing command name")),
        (b" NOOP\r\n", Malformed(None, "missing or invalid tag")),
        (b"+ NOOP\r\n", Malformed(None, "missing or invalid tag")),
        (b"* NOOP\r\n", Malformed(None, "missing or invalid tag")),
        (b"a FETCH 1 (FLAGS (UID)\r\n", Malformed("a", "expected fetch attribute")),
        (b"a FETCH 1 (FLAGS))\r\n", Malformed("a", "unexpected extra arguments")),
        (b"a LOGIN {abc}\r\n", Malformed("a", "expected user name")),
        (b"a LOGIN {5} x\r\n", Malformed("a", "invalid literal")),
        (b"a LOGIN ~{5+}\r\nalice x\r\n", Malformed("a", "literal8 not allowed here")),
        (b"a NOOP\x00\r\n", Malformed("a", "unexpected extra arguments")),
    ],
)
def test_malformed_lines(data: bytes, expected: Malformed) -> None:
    assert run(data) == [expected]


def test_absurd_literal_size_is_too_large() -> None:
    assert run(b"a APPEND INBOX {99999999999999}\r\n") == [LiteralTooLarge("a", 99999999999999, True)]


def test_literal_size_beyond_any_integer_is_malformed() -> None:
    events = run(b"a APPEND INBOX {" + b"9" * 5000 + b"}\r\nb NOOP\r\n")
    assert events == [Malformed("a", "literal size out of range"), CommandReady("b", c.Noop())]


def test_bad_command_with_sync_literal_is_refused_before_continuation() -> None:
    assert run(b"a BOGUS {5}\r\nb NOOP\r\n") == [Malformed("a", "Unknown command"), CommandReady("b", c.Noop())]


def test_unterminated_quote_before_literal_is_refused() -> None:
    assert run(b'a LOGIN "alice {5}\r\nb NOOP\r\n') == [
        Malformed("a", "unterminated quoted string"),
        CommandReady("b", c.Noop()),
    ]


def test_malformed_command_skips_its_non_sync_literals_and_remaining_lines() -> None:
    data = b"a BOGUS {5+}\r\nb NOO more {3+}\r\nc X\r\nb NOOP\r\n"
    expected = [Malformed("a", "Unknown command"), CommandReady("b", c.Noop())]
    assert run(data) == expected
    for cut in range(1, len(data)):
        assert run_split(data, [cut]) == expected, cut


def test_malformed_after_literal_reports_once() -> None:
    assert run(b"a LOGIN {5+}\r\nalice\r\nb NOOP\r\n") == [
        Malformed("a", "missing password"),
        CommandReady("b", c.Noop()),
    ]


# ---------------------------------------------------------------- limits


def test_line_too_long_is_reported_and_skipped() -> None:
    data = b"a NOOP " + b"x" * 200 + b"\r\nb NOOP\r\n"
    assert run(data, max_line=100) == [Malformed("a", "line too long"), CommandReady("b", c.Noop())]
    for cut in (5, 50, 101, 150, 207, 208):
        assert run_split(data, [cut], max_line=100) == [Malformed("a", "line too long"), CommandReady("b", c.Noop())]


def test_line_too_long_without_lf_is_not_buffered() -> None:
    parser = ImapParser(max_line=100)
    parser.feed(b"a " + b"x" * 1000)
    assert drain(parser) == [Malformed("a", "line too long")]
    for _ in range(100):
        parser.feed(b"y" * 1000)
        assert drain(parser) == []
        assert parser.buffered == 0
    parser.feed(b"\r\nb NOOP\r\n")
    assert drain(parser) == [CommandReady("b", c.Noop())]


def test_too_long_line_ending_in_non_sync_literal_skips_the_literal() -> None:
    data = b"a APPEND " + b"x" * 200 + b" {4+}\r\nb NO\r\nc NOOP\r\n"
    assert run(data, max_line=100) == [Malformed("a", "line too long"), CommandReady("c", c.Noop())]


def test_line_limit_counts_all_lines_of_a_command() -> None:
    data = b"a LOGIN {5+}\r\nalice " + b"x" * 100 + b"\r\nb NOOP\r\n"
    assert run(data, max_line=100) == [Malformed("a", "line too long"), CommandReady("b", c.Noop())]


def test_non_sync_literal_too_large_is_discarded_without_buffering() -> None:
    parser = ImapParser(max_literal=1000)
    size = 10 * 1024 * 1024
    parser.feed(b"a APPEND INBOX {%d+}\r\n" % size)
    assert drain(parser) == [LiteralTooLarge("a", size, False)]
    chunk = b"b LOGOUT\r\n" * 6553 + b"xxxxxx"  # 65536 bytes that look like commands
    for _ in range(size // len(chunk)):
        parser.feed(chunk)
        assert parser.buffered == 0
        assert drain(parser) == []
    parser.feed(b"z" * (size % len(chunk)) + b" (\\Seen) {3+}\r\nabc\r\nc NOOP\r\n")
    assert drain(parser) == [CommandReady("c", c.Noop())]


def test_sync_literal_too_large_expects_no_data() -> None:
    assert run(b"a APPEND INBOX {2000}\r\nb NOOP\r\n", max_literal=1000) == [
        LiteralTooLarge("a", 2000, True),
        CommandReady("b", c.Noop()),
    ]


def test_multiappend_total_is_limited() -> None:
    data = b"a APPEND INBOX {600+}\r\n" + b"x" * 600 + b" {600+}\r\n" + b"y" * 600 + b"\r\nb NOOP\r\n"
    assert run(data, max_literal=1000, max_command=1000) == [
        LiteralTooLarge("a", 600, False),
        CommandReady("b", c.Noop()),
    ]
    assert run(data, max_literal=1000)[0].__class__ is CommandReady  # default max_command is 2 * max_literal


def test_limits_can_be_raised_after_login() -> None:
    parser = ImapParser(max_literal=10)
    parser.max_literal = 100
    parser.max_command = 200
    parser.feed(b"a APPEND INBOX {50+}\r\n" + b"m" * 50 + b"\r\n")
    assert isinstance(parser.next(), CommandReady)


REFUSALS = (
    b"a BOGUS {5+}\r\n12345 x {2+}\r\nyz\r\n"
    b"b APPEND INBOX {40+}\r\n" + b"L" * 40 + b" (\\Seen) {1+}\r\nz\r\n"
    b"c NOOP " + b"w" * 80 + b" {3+}\r\nabc\r\n"
    b"d LOGIN {5}\r\n"
    b"e APPEND INBOX {3+}\r\nabc\r\n"
)


def test_refusals_split_at_every_byte_boundary() -> None:
    expected = [
        Malformed("a", "Unknown command"),
        LiteralTooLarge("b", 40, False),
        Malformed("c", "line too long"),
        NeedContinuation("d", 5, "LOGIN"),
        Malformed("d", "expected space before password"),  # "d" took "e APP" as its literal
    ]
    assert run(REFUSALS, max_line=64, max_literal=30) == expected
    for cut in range(1, len(REFUSALS)):
        assert run_split(REFUSALS, [cut], max_line=64, max_literal=30) == expected, cut
    assert run_split(REFUSALS, list(range(1, len(REFUSALS))), max_line=64, max_literal=30) == expected


# ---------------------------------------------------------------- session-driven modes


def test_reject_continuation_drops_the_command() -> None:
    parser = ImapParser()
    parser.feed(b"a APPEND INBOX {5}\r\n")
    assert drain(parser) == [NeedContinuation("a", 5, "APPEND")]
    parser.reject_continuation()
    parser.feed(b"b NOOP\r\n")
    assert drain(parser) == [CommandReady("b", c.Noop())]
    with pytest.raises(RuntimeError):
        parser.reject_continuation()


def test_idle_done() -> None:
    parser = ImapParser()
    parser.feed(b"i IDLE\r\ndone\r\nn NOOP\r\n")
    assert parser.next() == CommandReady("i", c.Idle())
    parser.expect_idle_done()
    assert parser.next() == IdleDone()
    assert parser.next() == CommandReady("n", c.Noop())


def test_idle_anything_else_is_malformed() -> None:
    parser = ImapParser()
    parser.feed(b"n NOOP\r\n")
    parser.expect_idle_done()
    assert parser.next() == Malformed(None, "expected DONE")
    parser.feed(b"n NOOP\r\n")
    assert parser.next() == CommandReady("n", c.Noop())


def test_sasl_responses() -> None:
    parser = ImapParser()
    parser.expect_sasl_response()
    parser.feed(b"AGFsaWNlAHNlY3JldA==\r\n")
    assert parser.next() == SaslResponse("AGFsaWNlAHNlY3JldA==")
    parser.expect_sasl_response()
    parser.feed(b"*\r\n")
    assert parser.next() == SaslResponse("*")
    parser.expect_sasl_response()
    parser.feed(b"\xff\r\n")
    assert parser.next() == Malformed(None, "invalid SASL response")


def test_special_mode_line_too_long() -> None:
    parser = ImapParser(max_line=10)
    parser.expect_sasl_response()
    parser.feed(b"A" * 50 + b"\r\nb NOOP\r\n")
    assert drain(parser) == [Malformed(None, "line too long"), CommandReady("b", c.Noop())]


def test_special_modes_only_between_commands() -> None:
    parser = ImapParser()
    parser.feed(b"a LOGIN {5}\r\n")
    parser.next()
    with pytest.raises(RuntimeError):
        parser.expect_idle_done()


# ---------------------------------------------------------------- speed


def test_fetch_line_parses_fast() -> None:
    line = b"A0042 UID FETCH 1:100,200:300 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Subject)])\r\n"
    assert len(line) >= 100
    parser = ImapParser()

    def one() -> None:
        parser.feed(line)
        event = parser.next()
        assert isinstance(event, CommandReady)

    one()
    event_items = run(line)[0]
    assert isinstance(event_items, CommandReady)
    assert event_items.command == c.Fetch(
        True,
        SequenceSet.parse("1:100,200:300"),
        event_items.command.items,  # type: ignore[union-attr]
    )
    assert FetchItem("UID") in event_items.command.items  # type: ignore[union-attr]


def test_empty_literal_and_literal_at_the_limit() -> None:
    assert run(b"a APPEND INBOX {0+}\r\n\r\n") == [
        CommandReady("a", c.Append("INBOX", (c.AppendMessage((), None, b""),)))
    ]
    events = run(b"a APPEND INBOX {10+}\r\n0123456789\r\n", max_literal=10)
    assert events == [CommandReady("a", c.Append("INBOX", (c.AppendMessage((), None, b"0123456789"),)))]
    assert run(b"a APPEND INBOX {11}\r\n", max_literal=10) == [LiteralTooLarge("a", 11, True)]


def test_list_with_empty_pattern_asks_for_the_delimiter() -> None:
    assert run(b'a LIST "" ""\r\n') == [CommandReady("a", c.List("", ("",)))]


def test_take_unparsed_hands_back_what_follows_the_last_command():
    """After COMPRESS the rest of the input is compressed: the session takes it back to inflate it."""
    parser = ImapParser()
    parser.feed(b"c COMPRESS DEFLATE\r\n\x01\x02 not a command\r\n")
    assert parser.next() == CommandReady("c", c.Compress("DEFLATE"))
    assert parser.take_unparsed() == b"\x01\x02 not a command\r\n"
    assert parser.next() is None
    parser.feed(b"a APPEND INBOX {5}\r\n")
    assert isinstance(parser.next(), NeedContinuation)
    with pytest.raises(RuntimeError):
        parser.take_unparsed()  # in the middle of a command


def test_admit_refuses_a_literal_within_the_limits_and_nothing_is_kept():
    """The session charges literals to a budget shared by all connections; a refusal is `busy`."""
    asked: list[int] = []

    def admit(size: int) -> bool:
        asked.append(size)
        return size < 1000

    parser = ImapParser(admit=admit)
    parser.feed(b"a APPEND INBOX {10}\r\n")
    assert parser.next() == NeedContinuation("a", 10, "APPEND")
    parser.feed(b"0123456789\r\nb APPEND INBOX {5000}\r\nc APPEND INBOX {5000+}\r\n")
    assert isinstance(parser.next(), CommandReady)
    assert parser.next() == LiteralTooLarge("b", 5000, True, busy=True)
    assert parser.next() == LiteralTooLarge("c", 5000, False, busy=True)
    parser.feed(b"x" * 5000)  # the refused non-synchronizing literal is dropped as it arrives
    assert parser.buffered == 0
    parser.feed(b"\r\nd NOOP\r\n")
    assert parser.next() == CommandReady("d", c.Noop())
    assert asked == [10, 5000, 5000]
    assert run(b"e APPEND INBOX {20000000}\r\n", max_literal=10) == [LiteralTooLarge("e", 20000000, True)]
