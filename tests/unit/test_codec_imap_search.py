"""SEARCH criteria trees and CHARSET decoding (RFC 3501 §6.4.4, RFC 9051 §6.4.4, RFC 4731, RFC 7162, RFC 5032)."""

from __future__ import annotations

import datetime as dt

import pytest

from dizimail.codec.imap.commands import Search
from dizimail.codec.imap.events import CommandReady, Malformed, NeedContinuation
from dizimail.codec.imap.parser import ImapParser
from dizimail.codec.imap.types import (
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
    SequenceSet,
    Size,
    Text,
    Uid,
    Younger,
)


def events(data: bytes) -> list[object]:
    parser = ImapParser()
    parser.feed(data)
    out = []
    while (event := parser.next()) is not None:
        out.append(event)
    return out


def search(data: bytes) -> Search:
    (event,) = [e for e in events(data + b"\r\n") if not isinstance(e, NeedContinuation)]
    assert isinstance(event, CommandReady), event
    assert isinstance(event.command, Search)
    return event.command


def key(criteria: bytes) -> SearchKey:
    return search(b"t SEARCH " + criteria).key


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        (b"ALL", All()),
        (b"answered", Flag("\\Answered", True)),
        (b"UNANSWERED", Flag("\\Answered", False)),
        (b"DELETED", Flag("\\Deleted", True)),
        (b"UNDELETED", Flag("\\Deleted", False)),
        (b"DRAFT", Flag("\\Draft", True)),
        (b"UNDRAFT", Flag("\\Draft", False)),
        (b"FLAGGED", Flag("\\Flagged", True)),
        (b"UNFLAGGED", Flag("\\Flagged", False)),
        (b"SEEN", Flag("\\Seen", True)),
        (b"UNSEEN", Flag("\\Seen", False)),
        (b"RECENT", Flag("\\Recent", True)),
        (b"OLD", Flag("\\Recent", False)),
        (b"NEW", And((Flag("\\Recent", True), Flag("\\Seen", False)))),
        (b"KEYWORD $Forwarded", Flag("$Forwarded", True)),
        (b"UNKEYWORD Junk", Flag("Junk", False)),
        (b"FROM alice", Header("FROM", "alice")),
        (b'TO "bob smith"', Header("TO", "bob smith")),
        (b"CC carol", Header("CC", "carol")),
        (b"BCC dave", Header("BCC", "dave")),
        (b"SUBJECT hello", Header("SUBJECT", "hello")),
        (b'HEADER Message-ID "<x@y>"', Header("MESSAGE-ID", "<x@y>")),
        (b'HEADER X-Spam ""', Header("X-SPAM", "")),
        (b"TEXT word", Text("word")),
        (b"BODY word", Body("word")),
        (b"BEFORE 1-Feb-2026", DateKey("internal", "before", dt.date(2026, 2, 1))),
        (b'ON "28-nov-2026"', DateKey("internal", "on", dt.date(2026, 11, 28))),
        (b"SINCE 01-Jan-2000", DateKey("internal", "since", dt.date(2000, 1, 1))),
        (b"SENTBEFORE 1-Feb-2026", DateKey("sent", "before", dt.date(2026, 2, 1))),
        (b"SENTON 1-Feb-2026", DateKey("sent", "on", dt.date(2026, 2, 1))),
        (b"SENTSINCE 1-Feb-2026", DateKey("sent", "since", dt.date(2026, 2, 1))),
        (b"LARGER 1000", Size("larger", 1000)),
        (b"SMALLER 5", Size("smaller", 5)),
        (b"1:3,5", Seq(SequenceSet.parse("1:3,5"))),
        (b"*", Seq(SequenceSet.parse("*"))),
        (b"$", Seq(SequenceSet.parse("$"))),
        (b"UID 1:*", Uid(SequenceSet.parse("1:*"))),
        (b"UID $", Uid(SequenceSet.parse("$"))),
        (b"NOT SEEN", Not(Flag("\\Seen", True))),
        (b"OR FROM a SUBJECT b", Or(Header("FROM", "a"), Header("SUBJECT", "b"))),
        (b"MODSEQ 620162338", ModSeq(620162338)),
        (b'MODSEQ "/flags/\\\\draft" all 620162338', ModSeq(620162338)),
        (b"OLDER 3600", Older(3600)),
        (b"YOUNGER 60", Younger(60)),
        (b"(SEEN)", Flag("\\Seen", True)),
        (b"SEEN FLAGGED", And((Flag("\\Seen", True), Flag("\\Flagged", True)))),
        (
            b"OR (FROM a NOT (TO b)) (OR SEEN (1:5 UNDELETED)) LARGER 10",
            And(
                (
                    Or(
                        And((Header("FROM", "a"), Not(Header("TO", "b")))),
                        Or(Flag("\\Seen", True), And((Seq(SequenceSet.parse("1:5")), Flag("\\Deleted", False)))),
                    ),
                    Size("larger", 10),
                )
            ),
        ),
    ],
)
def test_search_keys(criteria: bytes, expected: SearchKey) -> None:
    assert key(criteria) == expected


def test_charset_utf8_literal() -> None:
    command = search("t SEARCH CHARSET UTF-8 TEXT {6}\r\n电厂".encode())
    assert command == Search(False, "UTF-8", Text("电厂"))


def test_charset_literal_waits_for_continuation() -> None:
    parser = ImapParser()
    parser.feed(b"t SEARCH CHARSET UTF-8 TEXT {6}\r\n")
    assert parser.next() == NeedContinuation("t", 6, "SEARCH")
    assert parser.next() is None
    parser.feed("电厂\r\n".encode())
    event = parser.next()
    assert isinstance(event, CommandReady)
    assert event.command == Search(False, "UTF-8", Text("电厂"))


def test_charset_gb2312_is_decoded() -> None:
    raw = "电厂".encode("gb2312")
    command = search(b"t SEARCH CHARSET GB2312 SUBJECT {4+}\r\n" + raw)
    assert command == Search(False, "GB2312", Header("SUBJECT", "电厂"))


def test_charset_gbk_quoted() -> None:
    command = search(b't SEARCH CHARSET gbk BODY "' + "邮件".encode("gbk") + b'"')
    assert command == Search(False, "GBK", Body("邮件"))


def test_without_charset_strings_are_utf8() -> None:
    assert key('SUBJECT "你好"'.encode()) == Header("SUBJECT", "你好")


@pytest.mark.parametrize("charset", [b"X-UNKNOWN", b"base64", b"zlib", b"rot13", b'"a b"'])
def test_unknown_or_non_text_charset_is_badcharset(charset: bytes) -> None:
    (event,) = events(b"t SEARCH CHARSET " + charset + b" ALL\r\n")
    assert isinstance(event, Malformed)
    assert event.tag == "t"
    assert event.code == "BADCHARSET"


@pytest.mark.parametrize(
    ("criteria", "text"),
    [
        (b"BOGUS", "unknown search key BOGUS"),
        (b"FROM", "missing argument to FROM"),
        (b"OR SEEN", "missing second key of OR"),
        (b"NOT", "missing argument to NOT"),
        (b"(SEEN", "missing ')' after search key"),
        (b"SEEN)", "expected space before search key"),
        (b"()", "empty search key"),
        (b"BEFORE 2026-02-01", "expected date like 1-Feb-2026"),
        (b"BEFORE 30-Feb-2026", "invalid date"),
        (b"BEFORE 1-Foo-2026", "invalid date"),
        (b'ON "1-Feb-2026', "expected date like 1-Feb-2026"),
        (b"LARGER x", "expected size"),
        (b"OLDER 0", "interval out of range"),
        (b"UID 0", "invalid UID set: bad number in sequence set: '0'"),
        (b"HEADER a:b c", "invalid header field name"),
        (b"SUBJECT \xff", "8-bit text for SUBJECT must be a quoted string or a literal"),
        ("CHARSET UTF-8 TEXT 检修".encode(), "8-bit text for TEXT must be a quoted string or a literal"),
        (b'SUBJECT "\xff"', "search string is not valid utf-8"),
        (b"NOT " * 40 + b"SEEN", "search criteria nested too deeply"),
        (b"(" * 40 + b"SEEN" + b")" * 40, "search criteria nested too deeply"),
        (b"RETURN (BOGUS) ALL", "unknown RETURN option BOGUS"),
        (b"CHARSET UTF-8", "missing search key"),
    ],
)
def test_malformed_search(criteria: bytes, text: str) -> None:
    (event,) = events(b"t SEARCH " + criteria + b"\r\n")
    assert isinstance(event, Malformed)
    assert (event.tag, event.text) == ("t", text)


def test_search_return_save_and_uid() -> None:
    command = search(b"t UID SEARCH RETURN (SAVE ALL) UNSEEN")
    assert command == Search(True, None, Flag("\\Seen", False), ("SAVE", "ALL"))
