"""A selected mailbox larger than one batch of rows (services.selected.BATCH), and what another
session's changes look like to a view that holds UIDs only (RFC 3501 §7.4.1, RFC 2180 §4.1.1)."""

from __future__ import annotations

import asyncio
import imaplib
import itertools
import re

import pytest

from dizimail.services.selected import BATCH
from helpers import imap_login

MESSAGES = BATCH + BATCH // 2  # rows come in two batches
SEEN = BATCH + BATCH // 5  # messages 1..SEEN are \Seen
KEYWORD_AT = BATCH + 300  # the one message with the keyword $Big
_tags = itertools.count(1)


imap = imap_login


def ok(result):
    typ, data = result
    assert typ == "OK", data
    return data


def raw(conn: imaplib.IMAP4, command: str) -> list[bytes]:
    """Send one command; every response line up to and including the tagged one, in order."""
    tag = f"Z{next(_tags)}"
    conn.send(f"{tag} {command}\r\n".encode())
    lines = []
    while not (line := conn.readline()).startswith(tag.encode() + b" "):
        lines.append(line.rstrip(b"\r\n"))
    lines.append(line.rstrip(b"\r\n"))
    return lines


def fill(server, user: str, count: int, flags_of=lambda n: (), ordered: bool = True) -> None:
    """APPEND ``count`` messages "m1".."mN"; unordered, they commit together but take UIDs in any order."""
    async def run(s):
        account = await s.accounts.get_user(user)
        appends = [(b"Subject: m%d\r\n\r\nbody %d\r\n" % (n, n), flags_of(n)) for n in range(1, count + 1)]
        if ordered:
            for data, flags in appends:
                await s.ingest.append(account, "INBOX", data, flags, None)
        else:
            await asyncio.gather(*(s.ingest.append(account, "INBOX", data, flags, None) for data, flags in appends))
    server.call(run)


@pytest.fixture(scope="module")
def big(server) -> str:
    user = server.add_user("big")
    fill(server, user, MESSAGES, ordered=False)
    with imap(server, user) as conn:  # flags by sequence number: the UIDs came in any order
        ok(conn.select("INBOX"))
        ok(conn.store(f"1:{SEEN}", "+FLAGS.SILENT", "(\\Seen)"))
        ok(conn.store(f"{KEYWORD_AT}", "+FLAGS.SILENT", "($Big)"))
    return user


def test_examine_reports_counts_first_unseen_and_keywords(server, big):
    with imap(server, big) as conn:
        lines = raw(conn, "EXAMINE INBOX")
    assert f"* {MESSAGES} EXISTS".encode() in lines and b"* 0 RECENT" in lines  # the fixture's SELECT took them
    assert f"* OK [UNSEEN {SEEN + 1}] First unseen".encode() in lines
    assert f"* OK [UIDNEXT {MESSAGES + 1}] Predicted next UID".encode() in lines
    assert any(line.startswith(b"* FLAGS (") and b"$Big" in line for line in lines)


def test_fetch_1_star_flags_answers_every_message_once_in_order(server, big):
    with imap(server, big) as conn:
        ok(conn.select("INBOX", readonly=True))
        lines = raw(conn, "FETCH 1:* (UID FLAGS)")
    assert lines[-1].split()[1] == b"OK"
    fetched = [re.match(rb"\* (\d+) FETCH \(UID (\d+) FLAGS \(([^)]*)\)\)", line) for line in lines[:-1]]
    assert [int(m[1]) for m in fetched] == list(range(1, MESSAGES + 1)) == [int(m[2]) for m in fetched]
    assert [m[1] for m in fetched if b"\\Seen" in m[3]] == [b"%d" % n for n in range(1, SEEN + 1)]
    assert [m[1] for m in fetched if b"$Big" in m[3]] == [b"%d" % KEYWORD_AT]


def test_search_walks_every_batch(server, big):
    with imap(server, big) as conn:
        ok(conn.select("INBOX", readonly=True))
        assert ok(conn.search(None, "UNSEEN"))[0].split() == [b"%d" % n for n in range(SEEN + 1, MESSAGES + 1)]
        assert ok(conn.search(None, "KEYWORD", "$Big")) == [b"%d" % KEYWORD_AT]
        status = ok(conn.status("INBOX", "(HIGHESTMODSEQ)"))[0]
        found = ok(conn.search(None, "MODSEQ", "1"))[0]  # RFC 7162: the highest MODSEQ of the matches
    highest = re.search(rb"HIGHESTMODSEQ (\d+)", status)[1]
    assert found.endswith(b"(MODSEQ " + highest + b")") and len(found.split()) == MESSAGES + 2


def test_a_message_expunged_elsewhere_is_still_fetched_until_announced(server, user):
    fill(server, user, 3)
    with imap(server, user) as a, imap(server, user) as b:
        ok(a.select("INBOX"))
        ok(b.select("INBOX"))
        ok(b.store("2", "+FLAGS", "(\\Deleted)"))
        ok(b.expunge())
        data = ok(a.fetch("2", "(FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
        assert b"\\Deleted" in data[0][0] and data[0][1] == b"Subject: m2\r\n\r\n"  # as it was (RFC 2180 §4.1.1)
        assert raw(a, "NOOP")[0] == b"* 2 EXPUNGE"
        assert len(ok(a.fetch("1:*", "(FLAGS)"))) == 2


def test_a_keyword_set_elsewhere_is_in_flags_before_a_fetch_shows_it(server, user):
    fill(server, user, 2)
    with imap(server, user) as a, imap(server, user) as b:
        ok(a.select("INBOX"))
        ok(b.select("INBOX"))
        ok(b.store("1", "+FLAGS", "($Elsewhere)"))
        lines = raw(a, "FETCH 1 (FLAGS)")
    flags_at = next(i for i, line in enumerate(lines) if line.startswith(b"* FLAGS (") and b"$Elsewhere" in line)
    fetch_at = next(i for i, line in enumerate(lines) if line.startswith(b"* 1 FETCH") and b"$Elsewhere" in line)
    assert flags_at < fetch_at


def test_store_answers_with_the_current_flags_of_every_named_message(server, user):
    fill(server, user, 3, lambda n: ("\\Flagged",) if n == 3 else ())
    with imap(server, user) as a, imap(server, user) as b:
        ok(a.select("INBOX"))
        ok(b.select("INBOX"))
        ok(b.store("2", "+FLAGS", "($Other)"))
        lines = raw(a, "STORE 1:3 +FLAGS (\\Flagged)")
    fetches = {int(m[1]): m[2].split() for m in (re.match(rb"\* (\d+) FETCH \(FLAGS \(([^)]*)\)\)", line)
                                                 for line in lines) if m}
    assert {n: {f for f in flags if f != b"\\Recent"} for n, flags in fetches.items()} == {
        1: {b"\\Flagged"}, 2: {b"\\Flagged", b"$Other"}, 3: {b"\\Flagged"}}
    assert any(line.startswith(b"* FLAGS (") and b"$Other" in line for line in lines)


def test_a_keyword_stored_on_an_expunged_message_is_still_announced(server, user):
    fill(server, user, 1)
    with imap(server, user) as a, imap(server, user) as b:
        ok(a.select("INBOX"))
        ok(b.select("INBOX"))
        ok(b.store("1", "+FLAGS", "(\\Deleted)"))
        ok(b.expunge())
        lines = raw(a, "STORE 1 +FLAGS ($Late)")  # the row is gone: nothing changes, yet FLAGS names it
    assert lines[-1].split()[1] == b"OK"
    assert any(line.startswith(b"* FLAGS (") and b"$Late" in line for line in lines)


def test_under_qresync_every_fetch_that_store_causes_carries_the_uid(server, user):
    fill(server, user, 2)
    with imap(server, user) as conn:
        assert raw(conn, "ENABLE QRESYNC")[-1].split()[1] == b"OK"
        ok(conn.select("INBOX"))
        silent = raw(conn, "STORE 2 +FLAGS.SILENT (\\Flagged)")
        loud = raw(conn, "STORE 1 +FLAGS (\\Seen)")
    assert re.fullmatch(rb"\* 2 FETCH \(UID 2 MODSEQ \(\d+\)\)", silent[0]), silent
    assert re.fullmatch(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Seen \\Recent\) MODSEQ \(\d+\)\)", loud[0]), loud
