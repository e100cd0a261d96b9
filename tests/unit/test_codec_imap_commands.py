"""Every IMAP command form, parsed from byte literals (RFC 3501 §6, RFC 9051 §6, extensions)."""

from __future__ import annotations

import datetime as dt

import pytest

from dizimail.codec.imap import commands as c
from dizimail.codec.imap.events import CommandReady, Malformed
from dizimail.codec.imap.parser import ImapParser
from dizimail.codec.imap.types import BodySection, FetchItem, SequenceSet
from dizimail.codec.imap.types import Flag as FlagKey

S = SequenceSet.parse
ALL_MESSAGES = S("1:*")


def parse(data: bytes) -> c.Command:
    parser = ImapParser()
    parser.feed(data + b"\r\n")
    event = parser.next()
    assert isinstance(event, CommandReady), event
    assert parser.next() is None
    return event.command


def bad(data: bytes) -> Malformed:
    parser = ImapParser()
    parser.feed(data + b"\r\n")
    event = parser.next()
    assert isinstance(event, Malformed), event
    return event


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"a CAPABILITY", c.Capability()),
        (b"a noop", c.Noop()),
        (b"a LOGOUT", c.Logout()),
        (b"a STARTTLS", c.StartTls()),
        (b"a AUTHENTICATE plain", c.Authenticate("PLAIN", None)),
        (b"a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==", c.Authenticate("PLAIN", "AGFsaWNlAHNlY3JldA==")),
        (b"a AUTHENTICATE PLAIN =", c.Authenticate("PLAIN", "=")),
        (b"a LOGIN alice secret", c.Login("alice", "secret")),
        (b'a LOGIN "alice@example.com" "se\\"cr\\\\et"', c.Login("alice@example.com", 'se"cr\\et')),
        ('a LOGIN "用户" "密码"'.encode(), c.Login("用户", "密码")),
        (b"a ENABLE condstore QRESYNC", c.Enable(("CONDSTORE", "QRESYNC"))),
        (b"a SELECT INBOX", c.Select("INBOX")),
        (b"a select inbox", c.Select("INBOX")),
        (b'a SELECT "InBox"', c.Select("INBOX")),
        (b"a SELECT inbox/child", c.Select("inbox/child")),
        (b"a EXAMINE Archive", c.Select("Archive", readonly=True)),
        (b"a SELECT INBOX (CONDSTORE)", c.Select("INBOX", condstore=True)),
        (b"a SELECT INBOX (QRESYNC (67890007 20050715194045000))",
         c.Select("INBOX", qresync=c.QresyncParams(67890007, 20050715194045000))),
        (b"a SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541))",
         c.Select("INBOX", qresync=c.QresyncParams(67890007, 90060115194045000, S("41:211,214:541")))),
        (b"a SELECT INBOX (QRESYNC (1 2 1:9 (1:3 5:7)))",
         c.Select("INBOX", qresync=c.QresyncParams(1, 2, S("1:9"), (S("1:3"), S("5:7"))))),
        (b"a SELECT INBOX (QRESYNC (1 2 (1:3 5:7)) CONDSTORE)",
         c.Select("INBOX", condstore=True, qresync=c.QresyncParams(1, 2, None, (S("1:3"), S("5:7"))))),
        (b"a CREATE Drafts", c.Create("Drafts")),
        (b"a CREATE Drafts (USE (\\drafts))", c.Create("Drafts", ("\\Drafts",))),
        (b"a CREATE Mail (USE (\\Sent \\X-Custom))", c.Create("Mail", ("\\Sent", "\\X-Custom"))),
        (b"a DELETE &XfJT0ZAB-", c.Delete("&XfJT0ZAB-")),
        (b"a RENAME old new", c.Rename("old", "new")),
        (b"a SUBSCRIBE news", c.Subscribe("news")),
        (b"a UNSUBSCRIBE news", c.Unsubscribe("news")),
        (b'a LIST "" *', c.List("", ("*",))),
        (b"a LIST ~/Mail/ %", c.List("~/Mail/", ("%",))),
        (b'a LIST "" (INBOX Sent*)', c.List("", ("INBOX", "Sent*"))),
        (b'a LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"', c.List("", ("*",), ("SUBSCRIBED", "RECURSIVEMATCH"))),
        (b'a LIST () "" %', c.List("", ("%",))),
        (b'a LIST (special-use) "" * RETURN (SUBSCRIBED CHILDREN)',
         c.List("", ("*",), ("SPECIAL-USE",), ("SUBSCRIBED", "CHILDREN"))),
        (b'a LIST "" % RETURN (STATUS (MESSAGES UNSEEN) SPECIAL-USE)',
         c.List("", ("%",), (), ("STATUS", "SPECIAL-USE"), ("MESSAGES", "UNSEEN"))),
        (b'a LIST "" % RETURN ()', c.List("", ("%",))),
        (b'a LSUB "" *', c.Lsub("", "*")),
        (b"a NAMESPACE", c.Namespace()),
        (b"a STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE APPENDLIMIT DELETED)",
         c.Status("INBOX", ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ", "SIZE",
                            "APPENDLIMIT", "DELETED"))),
        (b"a status inbox (messages)", c.Status("INBOX", ("MESSAGES",))),
        (b"a CHECK", c.Check()),
        (b"a CLOSE", c.Close()),
        (b"a UNSELECT", c.Unselect()),
        (b"a EXPUNGE", c.Expunge(None)),
        (b"a UID EXPUNGE 3:5,7", c.Expunge(S("3:5,7"))),
        (b"a COPY 1:3 Trash", c.Copy(False, S("1:3"), "Trash")),
        (b'a UID COPY 4,7 "Sent Items"', c.Copy(True, S("4,7"), "Sent Items")),
        (b"a MOVE * inbox", c.Move(False, S("*"), "INBOX")),
        (b"a UID MOVE $ Archive", c.Move(True, S("$"), "Archive")),
        (b"a IDLE", c.Idle()),
        (b"a ID NIL", c.Id(None)),
        (b"a ID ()", c.Id(())),
        (b'a ID ("name" "Thunderbird" "version" NIL)', c.Id((("name", "Thunderbird"), ("version", None)))),
        (b"a COMPRESS deflate", c.Compress("DEFLATE")),
        (b'a GETQUOTA ""', c.GetQuota("")),
        (b"a GETQUOTAROOT INBOX", c.GetQuotaRoot("INBOX")),
        (b'a SETQUOTA "" (STORAGE 512 messages 1000)', c.SetQuota("", (("STORAGE", 512), ("MESSAGES", 1000)))),
        (b'a SETQUOTA "" ()', c.SetQuota("", ())),
        (b"a NOTIFY NONE", c.Notify(None)),
        (b"a NOTIFY SET STATUS (selected (MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge))",
         c.Notify((c.NotifyGroup("SELECTED", (), (
             c.NotifyEvent("MessageNew", (FetchItem("UID"), FetchItem("BODY", BodySection(
                 (), "HEADER.FIELDS", ("from", "to", "subject")), None, True))),
             c.NotifyEvent("MessageExpunge"))),), status=True)),
        (b"a NOTIFY SET (selected MessageNew (uid) MessageExpunge) (subtree Lists MessageNew MessageExpunge)",
         c.Notify((c.NotifyGroup("SELECTED", (), (c.NotifyEvent("MessageNew", (FetchItem("UID"),)),
                                                  c.NotifyEvent("MessageExpunge"))),
                   c.NotifyGroup("SUBTREE", ("Lists",), (c.NotifyEvent("MessageNew"),
                                                         c.NotifyEvent("MessageExpunge")))))),
        (b'a NOTIFY SET (mailboxes ("a b" inbox) (messagenew messageexpunge flagchange))',
         c.Notify((c.NotifyGroup("MAILBOXES", ("a b", "INBOX"), (
             c.NotifyEvent("MessageNew"), c.NotifyEvent("MessageExpunge"), c.NotifyEvent("FlagChange"))),))),
        (b"a NOTIFY SET (personal (MailboxName SubscriptionChange XFuture)) (subscribed NONE)",
         c.Notify((c.NotifyGroup("PERSONAL", (), (c.NotifyEvent("MailboxName"), c.NotifyEvent("SubscriptionChange"),
                                                  c.NotifyEvent("XFUTURE"))),
                   c.NotifyGroup("SUBSCRIBED", (), ())))),
        # Other mailboxes take any message event alone (RFC 5465 §3.1 example with erratum 1804; Dovecot)
        (b"a NOTIFY SET STATUS (mailboxes x (MessageExpunge))",
         c.Notify((c.NotifyGroup("MAILBOXES", ("x",), (c.NotifyEvent("MessageExpunge"),)),), status=True)),
        (b"a NOTIFY SET (subtree Lists (MessageNew)) (personal (FlagChange))",
         c.Notify((c.NotifyGroup("SUBTREE", ("Lists",), (c.NotifyEvent("MessageNew"),)),
                   c.NotifyGroup("PERSONAL", (), (c.NotifyEvent("FlagChange"),))))),
        (b'a CANCELUPDATE "A1" "b2"', c.CancelUpdate(("A1", "b2"))),
        (b"a UNAUTHENTICATE", c.Unauthenticate()),
    ],
)  # fmt: skip
def test_commands_parse(line: bytes, expected: c.Command) -> None:
    assert parse(line) == expected


def test_parsed_commands_carry_their_tag() -> None:
    parser = ImapParser()
    parser.feed(b"A0042 NOOP\r\n")
    event = parser.next()
    assert isinstance(event, CommandReady)
    assert event.tag == event.command.tag == "A0042"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"a FETCH 1 FAST", (FetchItem("FLAGS"), FetchItem("INTERNALDATE"), FetchItem("RFC822.SIZE"))),
        (b"a FETCH 1 all", (FetchItem("FLAGS"), FetchItem("INTERNALDATE"), FetchItem("RFC822.SIZE"),
                            FetchItem("ENVELOPE"))),
        (b"a FETCH 1 FULL", (FetchItem("FLAGS"), FetchItem("INTERNALDATE"), FetchItem("RFC822.SIZE"),
                             FetchItem("ENVELOPE"), FetchItem("BODY"))),
        (b"a FETCH 1 flags", (FetchItem("FLAGS"),)),
        (b"a FETCH 1 BODY", (FetchItem("BODY"),)),
        (b"a FETCH 1 body[]", (FetchItem("BODY", BodySection()),)),
        (b"a FETCH 1 (UID MODSEQ RFC822 RFC822.HEADER RFC822.TEXT RFC822.SIZE ENVELOPE BODYSTRUCTURE INTERNALDATE)",
         tuple(FetchItem(n) for n in ("UID", "MODSEQ", "RFC822", "RFC822.HEADER", "RFC822.TEXT", "RFC822.SIZE",
                                      "ENVELOPE", "BODYSTRUCTURE", "INTERNALDATE"))),
        (b"a FETCH 1 BODY.PEEK[1.2.HEADER.FIELDS.NOT (X-A X-B)]<10.20>",
         (FetchItem("BODY", BodySection((1, 2), "HEADER.FIELDS.NOT", ("X-A", "X-B")), (10, 20), True),)),
        (b'a FETCH 1 BODY[HEADER.FIELDS (Subject "From")]',
         (FetchItem("BODY", BodySection((), "HEADER.FIELDS", ("Subject", "From"))),)),
        (b"a FETCH 1 (BODY[HEADER] BODY[TEXT] BODY[1.MIME] BODY[2.3] BODY[4.TEXT])",
         (FetchItem("BODY", BodySection((), "HEADER")), FetchItem("BODY", BodySection((), "TEXT")),
          FetchItem("BODY", BodySection((1,), "MIME")), FetchItem("BODY", BodySection((2, 3))),
          FetchItem("BODY", BodySection((4,), "TEXT")))),
        (b"a FETCH 1 (BINARY[1] BINARY.PEEK[1.2]<0.100> BINARY.SIZE[3] BINARY[])",
         (FetchItem("BINARY", BodySection((1,))), FetchItem("BINARY", BodySection((1, 2)), (0, 100), True),
          FetchItem("BINARY.SIZE", BodySection((3,))), FetchItem("BINARY", BodySection()))),
        (b"a FETCH 1 (EMAILID THREADID SAVEDATE PREVIEW)",
         tuple(FetchItem(n) for n in ("EMAILID", "THREADID", "SAVEDATE", "PREVIEW"))),
    ],
)  # fmt: skip
def test_fetch_items(line: bytes, expected: tuple[FetchItem, ...]) -> None:
    command = parse(line)
    assert isinstance(command, c.Fetch)
    assert command.items == expected


def test_fetch_literal_header_field_name() -> None:
    command = parse(b"a FETCH 1 BODY[HEADER.FIELDS ({7+}\r\nSubject)]")
    assert command == c.Fetch(False, S("1"), (FetchItem("BODY", BodySection((), "HEADER.FIELDS", ("Subject",))),))


def test_fetch_attributes_parsed_once_answer_like_a_fresh_parse() -> None:
    """The parsed attribute lists of recent FETCH commands are kept by their bytes (codec.imap.fetch):
    another set, the UID prefix (VANISHED is for UID FETCH only) and a literal all still count."""
    items = b" (UID FLAGS BODY.PEEK[HEADER.FIELDS (DATE SUBJECT)]) (CHANGEDSINCE 7 VANISHED)"
    first = parse(b"a UID FETCH 1:5" + items)
    again = parse(b"b UID FETCH 9,11" + items)
    assert again.tag == "b" and again.sequence == SequenceSet(((9, 9), (11, 11)))
    assert (again.items, again.changedsince, again.vanished) == (first.items, 7, True)
    parser = ImapParser()
    parser.feed(b"c FETCH 1" + items + b"\r\n")  # the same tail without UID: still refused
    event = parser.next()
    assert isinstance(event, Malformed) and "VANISHED" in event.text
    literal = parse(b"d UID FETCH 1 (BODY.PEEK[HEADER.FIELDS ({4+}\r\nDATE)])")
    assert literal.items[0].section.fields == ("DATE",)


def test_fetch_modifiers_and_uid() -> None:
    assert parse(b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)") == c.Fetch(
        True, ALL_MESSAGES, (FetchItem("FLAGS"),), 12345, True
    )
    assert parse(b"a FETCH 1:* FLAGS (changedsince 7)") == c.Fetch(False, ALL_MESSAGES, (FetchItem("FLAGS"),), 7)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"a STORE 1 FLAGS (\\Seen)", c.Store(False, S("1"), "", False, ("\\Seen",))),
        (b"a STORE 1:3 +FLAGS.SILENT (\\deleted $Forwarded)",
         c.Store(False, S("1:3"), "+", True, ("\\Deleted", "$Forwarded"))),
        (b"a UID STORE 5 -flags \\Seen \\Flagged", c.Store(True, S("5"), "-", False, ("\\Seen", "\\Flagged"))),
        (b"a STORE 1 FLAGS ()", c.Store(False, S("1"), "", False, ())),
        (b"a STORE 1 (UNCHANGEDSINCE 320162338) +FLAGS (\\Answered)",
         c.Store(False, S("1"), "+", False, ("\\Answered",), 320162338)),
        (b"a STORE 1 (UNCHANGEDSINCE 0) FLAGS.SILENT (x)", c.Store(False, S("1"), "", True, ("x",), 0)),
    ],
)  # fmt: skip
def test_store(line: bytes, expected: c.Store) -> None:
    assert parse(line) == expected


def test_append_single_message_with_flags_and_date() -> None:
    command = parse(b'a APPEND saved-messages (\\Seen) "07-Feb-1994 21:52:25 -0800" {5+}\r\nhello')
    when = dt.datetime(1994, 2, 7, 21, 52, 25, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    assert command == c.Append("saved-messages", (c.AppendMessage(("\\Seen",), when, b"hello"),))


def test_append_date_with_space_padded_day() -> None:
    command = parse(b'a APPEND INBOX " 7-Feb-1994 01:02:03 +0130" {1+}\r\nx')
    assert isinstance(command, c.Append)
    assert command.messages[0].date == dt.datetime(
        1994, 2, 7, 1, 2, 3, tzinfo=dt.timezone(dt.timedelta(hours=1, minutes=30))
    )


def test_multiappend_binary_and_catenate() -> None:
    command = parse(
        b"a APPEND Drafts {3+}\r\none (\\Draft) ~{4+}\r\nt\x00wo"
        b' CATENATE (URL "/INBOX;UIDVALIDITY=1/;UID=20" TEXT {4+}\r\nbody)'
        b" UTF8 (~{3+}\r\n\xe4\xb8\x80)"
    )
    assert command == c.Append(
        "Drafts",
        (
            c.AppendMessage((), None, b"one"),
            c.AppendMessage(("\\Draft",), None, b"t\x00wo", True),
            c.AppendMessage((), None, b"", False, (("URL", "/INBOX;UIDVALIDITY=1/;UID=20"), ("TEXT", b"body"))),
            c.AppendMessage((), None, "一".encode(), True),
        ),
    )


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (b"a XYZZY", "Unknown command"),
        (b"a UID LOGIN a b", "Unknown command"),
        (b"a UID", "missing command after UID"),
        (b"a", "missing command name"),
        (b"a NOOP extra", "unexpected extra arguments"),
        (b"a NOOP ", "unexpected extra arguments"),
        (b"a LOGIN alice", "missing password"),
        (b"a LOGIN  alice secret", "expected user name"),
        (b'a LOGIN "alice secret', "invalid quoted string in user name"),
        (b'a LOGIN "a\\b" c', "invalid quoted string in user name"),
        (b"a LOGIN \xff x", "8-bit text for user name must be a quoted string or a literal"),
        (b'a LOGIN "\xff" x', "invalid UTF-8 in user name"),
        (b"a SELECT", "missing mailbox name"),
        (b"a SELECT INBOX (FOO)", "unknown select parameter FOO"),
        (b"a SELECT INBOX (CONDSTORE CONDSTORE)", "repeated select parameter CONDSTORE"),
        (b"a SELECT INBOX (QRESYNC (0 1))", "UIDVALIDITY out of range"),
        (b"a SELECT INBOX (QRESYNC (1 2 1:*))", "known UIDs must not contain '*' or '$'"),
        (b"a CREATE x (FOO)", "unknown create parameter FOO"),
        (b"a CREATE x (USE (Drafts))", "expected special-use attribute"),
        (b'a LIST (RECURSIVEMATCH) "" *', "RECURSIVEMATCH needs another selection option"),
        (b'a LIST (BOGUS) "" *', "unknown LIST selection option BOGUS"),
        (b'a LIST "" * RETURN (BOGUS)', "invalid LIST return option BOGUS"),
        (b'a LIST "" * FOO', "expected RETURN"),
        (b"a STATUS INBOX (MESSAGES BOGUS)", "unknown status item BOGUS"),
        (b"a STATUS INBOX ()", "empty status item"),
        (b"a STATUS INBOX (MESSAGES", "missing ')' after status item"),
        (b"a FETCH 1 (FLAGS", "missing ')' after fetch attribute"),
        (b"a FETCH 1 FLAGS)", "unexpected extra arguments"),
        (b"a FETCH 1 ((FLAGS))", "expected fetch attribute"),
        (b"a FETCH 1 BOGUS", "unknown fetch attribute BOGUS"),
        (b"a FETCH 1 BODY.PEEK", "unknown fetch attribute BODY.PEEK"),
        (b"a FETCH 1 BODY[1.MIM]", "invalid section MIM"),
        (b"a FETCH 1 BODY[MIME]", "invalid section MIME"),
        (b"a FETCH 1 BODY[0]", "expected section text"),
        (b"a FETCH 1 BODY[1.2", "missing ']' after section"),
        (b"a FETCH 1 BINARY[HEADER]", "expected ']' after section"),
        (b"a FETCH 1 BODY[]<1>", "expected '.' in partial"),
        (b"a FETCH 1 BODY[]<1.0>", "partial length out of range"),
        (b"a FETCH 1 BODY[HEADER.FIELDS (a:b)]", "invalid header field name"),
        (b"a FETCH 1 BODY[HEADER.FIELDS ()]", "empty header field list"),
        (b"a FETCH 0 FLAGS", "invalid sequence set: bad number in sequence set: '0'"),
        (b"a FETCH 1 FLAGS (VANISHED)", "VANISHED needs UID FETCH with CHANGEDSINCE"),
        (b"a UID FETCH 1 FLAGS (VANISHED)", "VANISHED needs UID FETCH with CHANGEDSINCE"),
        (b"a FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)", "repeated fetch modifier"),
        (b"a STORE 1 FLAGS", "missing flags"),
        (b"a STORE 1 XFLAGS (\\Seen)", "invalid store attribute XFLAGS"),
        (b"a STORE 1 (UNCHANGEDSINCE 1 UNCHANGEDSINCE 2) FLAGS (x)", "repeated store modifier"),
        (b"a STORE 1 FLAGS (\\Seen", "missing ')' after flag list"),
        (b"a COPY 1", "missing mailbox name"),
        (b"a APPEND INBOX", "missing message"),
        (b'a APPEND INBOX "hello"', "invalid date-time"),
        (b'a APPEND INBOX "31-Feb-2026 00:00:00 +0000" {1+}\r\nx', "invalid date-time"),
        (b"a APPEND INBOX (\\Seen) hello", "expected literal for message"),
        (b"a AUTHENTICATE PLAIN a!b", "expected initial response"),
        (b"a AUTHENTICATE PLAIN = =", "expected initial response"),
        (b"a ENABLE", "missing capability"),
        (b"a ID (\"a\")", "expected space before ID value"),
        (b"a NOTIFY SOMETIMES", "expected NONE or SET"),
        (b"a NOTIFY SET", "missing event groups"),
        (b"a NOTIFY SET (everything (MessageNew MessageExpunge))", "unknown mailbox filter EVERYTHING"),
        (b"a NOTIFY SET (selected (MessageNew))", "MessageNew and MessageExpunge go together"),
        (b"a NOTIFY SET (selected-delayed (MessageExpunge FlagChange))", "MessageNew and MessageExpunge go together"),
        (b"a NOTIFY SET (selected (FlagChange))", "FlagChange needs MessageNew and MessageExpunge"),
        (b"a NOTIFY SET (selected (MailboxName))", "only message events apply to the selected mailbox"),
        (b"a NOTIFY SET (personal (MessageNew (UID) MessageExpunge))",
         "MessageNew fetch attributes are only for SELECTED"),
        (b"a NOTIFY SET (selected NONE) (selected-delayed NONE)", "SELECTED or SELECTED-DELAYED may appear once"),
        (b"a NOTIFY SET (mailboxes (a b) (MessageNew MessageExpunge)", "missing ')' after event group"),
        (b"a CANCELUPDATE", "missing tag"),
        (b"a SEARCH RETURN (PARTIAL 1) ALL", "expected PARTIAL range like 1:100"),
        (b"a SEARCH RETURN (PARTIAL 1:*) ALL", "expected PARTIAL range like 1:100"),
        (b"a SEARCH RETURN (PARTIAL *:1) ALL", "expected PARTIAL range like 1:100"),
        (b"a SEARCH RETURN (PARTIAL 0:5) ALL", "invalid PARTIAL range"),
        (b"a SEARCH RETURN (PARTIAL -1:5) ALL", "invalid PARTIAL range"),
        (b"a SEARCH RETURN (PARTIAL 1:4294967296) ALL", "invalid PARTIAL range"),
        (b"a SEARCH RETURN (PARTIAL 1:5 ALL) ALL", "RETURN may hold one PARTIAL or ALL"),
        (b"a SORT RETURN (PARTIAL 1:5 PARTIAL 6:9) (DATE) UTF-8 ALL", "RETURN may hold one PARTIAL or ALL"),
        (b"a SEARCH", "missing search criteria"),
        (b"a THREAD REFERENCES UTF-8", "missing search key"),
        (b"a SORT (BOGUS) UTF-8 ALL", "unknown sort key BOGUS"),
        (b"a SORT (DATE) UTF-8", "missing search key"),
    ],
)  # fmt: skip
def test_bad_arguments_are_refused_with_specific_text(line: bytes, text: str) -> None:
    event = bad(line)
    assert event.tag == "a"
    assert event.text == text


def test_search_and_sort_and_thread_commands() -> None:
    assert parse(b"a SEARCH UNSEEN") == c.Search(False, None, FlagKey("\\Seen", False))
    assert parse(b"a UID SEARCH RETURN (MIN MAX COUNT) CHARSET utf-8 SEEN") == c.Search(
        True, "UTF-8", FlagKey("\\Seen", True), ("MIN", "MAX", "COUNT")
    )
    assert parse(b"a SEARCH RETURN () SEEN") == c.Search(False, None, FlagKey("\\Seen", True), ())
    assert parse(b"a UID SORT (REVERSE DATE SUBJECT) UTF-8 SEEN") == c.Sort(
        True, ((True, "DATE"), (False, "SUBJECT")), "UTF-8", FlagKey("\\Seen", True)
    )
    assert parse(b"a SORT RETURN (ALL) (ARRIVAL) US-ASCII SEEN") == c.Sort(
        False, ((False, "ARRIVAL"),), "US-ASCII", FlagKey("\\Seen", True), ("ALL",)
    )
    assert parse(b"a THREAD references UTF-8 SEEN") == c.Thread(False, "REFERENCES", "UTF-8", FlagKey("\\Seen", True))
    assert parse(b"a UID THREAD ORDEREDSUBJECT UTF-8 SEEN").uid is True  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("line", "returns", "partial"),
    [
        (b"a SEARCH RETURN (PARTIAL 1:10) ALL", ("PARTIAL",), (1, 10)),
        (b"a SEARCH RETURN (partial 500:400 count) ALL", ("PARTIAL", "COUNT"), (400, 500)),
        (b"a SEARCH RETURN (PARTIAL -1:-100) ALL", ("PARTIAL",), (-1, -100)),
        (b"a SEARCH RETURN (PARTIAL -100:-1) ALL", ("PARTIAL",), (-1, -100)),
        (b"a SEARCH RETURN (UPDATE CONTEXT MIN) ALL", ("UPDATE", "CONTEXT", "MIN"), None),
    ],
)  # fmt: skip
def test_context_return_options(line: bytes, returns: tuple[str, ...], partial: tuple[int, int] | None) -> None:
    """RFC 5267 §4: CONTEXT, UPDATE and PARTIAL (with RFC 9394's ranges from the end)."""
    command = parse(line)
    assert isinstance(command, c.Search)
    assert (command.returns, command.partial) == (returns, partial)
    sort = parse(line.replace(b"SEARCH", b"SORT").replace(b") ALL", b") (DATE) UTF-8 ALL"))
    assert isinstance(sort, c.Sort)
    assert (sort.returns, sort.partial) == (returns, partial)


def test_a_repeated_command_line_is_parsed_once_and_answers_with_its_own_tag():
    """Commands are kept by what follows the tag: the same line under another tag is the kept command
    with that tag; a bad tag in front of a kept line is still refused; credentials are never kept."""
    from dizimail.codec.imap import grammar
    from dizimail.codec.imap.reader import ParseError

    line = b" STATUS INBOX (MESSAGES UNSEEN)"
    first = grammar.parse_command(b"a1" + line)
    second = grammar.parse_command(b"zz9" + line)
    assert first[0] == "a1" and second[0] == "zz9" and second[1].tag == "zz9" and first[1].tag == "a1"
    assert grammar._kept[line] is not None and second[1] == c.Status(tag="zz9", mailbox="INBOX", items=("MESSAGES", "UNSEEN"))
    with pytest.raises(ParseError):
        grammar.parse_command(b"a{" + line)
    grammar.parse_command(b"a2 LOGIN boss secret-password")
    assert not [k for k in grammar._kept if b"secret-password" in k]
    for n in range(grammar.KEPT_COMMANDS + 10):  # bounded
        grammar.parse_command(b"t STATUS f%d (MESSAGES)" % n)
    assert len(grammar._kept) == grammar.KEPT_COMMANDS
