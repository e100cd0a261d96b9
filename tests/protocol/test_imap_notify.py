"""NOTIFY over real sockets (RFC 5465): STATUS, LIST and selected-mailbox events, as they happen.

A change made by one session is committed, and its notification queued, before that session's
tagged OK; so once ``other`` has its OK, anything ``client`` is due arrives before the answer to
``client``'s next command, and a NOOP shows what was (and was not) sent.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from dizimail.app.build import open_node
from dizimail.config.loader import load_config
from dizimail.model.types import IngestRecord, LocalDelivery
from imap_client import ImapLines, message


@pytest.fixture
def client(server, user):
    conn = ImapLines(server.ports["imaps"], user)
    yield conn
    conn.close()


@pytest.fixture
def other(server, user):
    conn = ImapLines(server.ports["imaps"], user)
    yield conn
    conn.close()


def status_values(line: str) -> dict[str, int]:
    items = line[line.index("(") + 1 : -1].split()
    return {items[i]: int(items[i + 1]) for i in range(0, len(items), 2)}


def test_notify_is_advertised_and_bad_event_sets_are_refused(client):
    [caps] = client.ok("CAPABILITY")
    assert "NOTIFY" in caps.split()
    _lines, done = client.command("NOTIFY SET (selected (MessageNew))")
    assert done.split(" ")[1] == "BAD"  # RFC 5465 §5: for the selected mailbox MessageNew and MessageExpunge go together
    _lines, done = client.command("NOTIFY SET (personal (MailboxName XNoSuchEvent))")
    assert done.split(" ", 2)[1:] == ["NO", done.split(" ", 2)[2]]
    assert "[BADEVENT (MessageNew MessageExpunge FlagChange" in done  # RFC 5465 §3.1 lists what is supported
    client.ok("NOTIFY SET (personal (MailboxName SubscriptionChange MailboxMetadataChange))")
    client.ok("NOTIFY NONE")


def test_notify_set_status_sends_the_items_the_events_need(client):
    client.ok("CREATE watched")
    client.append("watched", message("one"))
    [line] = client.ok("NOTIFY SET STATUS (mailboxes watched (MessageNew MessageExpunge))")
    assert line.startswith('* STATUS "watched" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY ')
    [line] = client.ok("NOTIFY SET STATUS (mailboxes watched (MessageNew MessageExpunge FlagChange))")
    assert list(status_values(line)) == ["MESSAGES", "UIDNEXT", "UIDVALIDITY", "HIGHESTMODSEQ"]
    assert client.ok("NOTIFY SET (mailboxes watched (MessageNew MessageExpunge FlagChange))") == []
    assert client.ok("NOTIFY SET STATUS (mailboxes nosuchbox (MessageNew MessageExpunge))") == []


def test_notify_set_status_with_one_message_event_for_other_mailboxes_is_accepted(client, other):
    """imaptest's notify script (Dovecot passes it): a single message event for other mailboxes is
    valid, gets its STATUS items, and the session goes on."""
    client.ok("CREATE single")
    client.append("single", message("one"))
    [line] = client.ok("NOTIFY SET STATUS (MAILBOXES single (MessageExpunge))")
    assert line == '* STATUS "single" (MESSAGES 1)'
    [line] = client.ok("NOTIFY SET STATUS (mailboxes single (MessageNew))")
    assert list(status_values(line)) == ["MESSAGES", "UIDNEXT", "UIDVALIDITY"]
    [line] = client.ok("NOTIFY SET STATUS (mailboxes single (FlagChange))")
    assert list(status_values(line)) == ["UIDVALIDITY", "HIGHESTMODSEQ"]
    client.ok("NOTIFY SET (mailboxes single (MessageExpunge))")
    other.append("single", message("two"))  # a new message was not asked for ...
    assert client.ok("NOOP") == []
    other.ok("SELECT single")
    other.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")  # ... an expunge was
    assert client.line() == '* STATUS "single" (MESSAGES 1)'
    assert client.ok("NOOP") == []


def test_new_mail_in_another_mailbox_arrives_as_status_between_commands(client, other):
    client.ok("CREATE lists")
    client.ok("NOTIFY SET (personal (MessageNew MessageExpunge))")
    other.append("lists", message("hello"))
    line = client.line()  # unsolicited, no command in progress (RFC 5465 §3.1)
    assert line == '* STATUS "lists" (MESSAGES 1 UIDNEXT 2)'
    other.ok("SELECT lists")
    other.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert client.ok("NOOP") == []  # a flag change was not asked for
    other.ok("EXPUNGE")
    assert client.line() == '* STATUS "lists" (MESSAGES 0 UIDNEXT 2)'


def test_flag_changes_elsewhere_report_unseen_or_highestmodseq(client, other):
    client.ok("CREATE box")
    client.append("box", message("a"))
    client.ok("NOTIFY SET (mailboxes box (MessageNew MessageExpunge FlagChange))")
    other.ok("SELECT box")
    other.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
    assert client.line() == '* STATUS "box" (UNSEEN 0)'  # RFC 5465 §5.1 without CONDSTORE
    client.ok("ENABLE CONDSTORE")
    other.ok("STORE 1 +FLAGS.SILENT (\\Flagged)")
    values = status_values(client.line())
    assert list(values) == ["UIDVALIDITY", "HIGHESTMODSEQ"]


def test_selected_mailbox_events_come_unsolicited(client, other):
    client.ok("SELECT INBOX")
    client.ok("NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge FlagChange))")
    other.append("INBOX", message("first"))
    assert client.line() == "* 1 EXISTS"
    assert client.line() == "* 1 RECENT"
    assert client.line() == "* 1 FETCH (UID 1 FLAGS (\\Recent))"  # MessageNew's attributes (§5.2)
    other.ok("SELECT INBOX")
    other.ok("STORE 1 +FLAGS.SILENT (\\Flagged)")
    assert client.line() == "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))"
    other.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    client.line()
    other.ok("EXPUNGE")
    assert client.line() == "* 1 EXPUNGE"  # SELECTED: expunges need no command (§6.1.1)


def test_selected_delayed_keeps_expunges_for_the_next_command(client, other):
    client.append("INBOX", message("first"))
    client.ok("SELECT INBOX")
    client.ok("NOTIFY SET (selected-delayed (MessageNew MessageExpunge))")
    other.ok("SELECT INBOX")
    other.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")
    other.append("INBOX", message("second"))
    assert client.line() == "* 2 EXISTS"  # the expunged message still counts until a command allows
    lines = client.ok("NOOP")
    assert "* 1 EXPUNGE" in lines
    assert not any("FETCH" in line for line in lines[: lines.index("* 1 EXPUNGE")])  # no FlagChange asked


def test_without_selected_events_only_commands_report_the_selected_mailbox(client, other):
    client.ok("CREATE side")
    client.ok("SELECT INBOX")
    client.ok("NOTIFY SET (personal (MessageNew MessageExpunge))")
    client.send(b"i IDLE")
    assert client.line().startswith("+ ")
    other.append("INBOX", message("to the selected mailbox"))
    other.append("side", message("to another"))
    # In IDLE, exactly the NOTIFY events (RFC 5465 §4): STATUS for "side", nothing for INBOX, which
    # "personal" covers but the (absent) SELECTED group governs (§3.1).
    assert client.line() == '* STATUS "side" (MESSAGES 1 UIDNEXT 2)'
    client.send(b"DONE")
    assert client.line() == "* 1 EXISTS"  # the base protocol still reports it when the command ends
    while not (line := client.line()).startswith("i "):
        assert "STATUS" not in line
    assert line.startswith("i OK")


def test_mailbox_list_changes_arrive_as_list(client, other):
    client.ok("CREATE Lists")
    client.ok("NOTIFY SET (subtree Lists (MailboxName SubscriptionChange))")
    other.ok("CREATE Lists/new")
    assert client.line() == '* LIST (\\HasNoChildren) "/" "Lists/new"'
    assert client.line() == '* LIST (\\HasChildren) "/" "Lists"'  # the parent is affected too (§5.4)
    other.ok("SUBSCRIBE Lists/new")
    assert client.line() == '* LIST (\\HasNoChildren \\Subscribed) "/" "Lists/new"'
    other.ok("RENAME Lists/new Lists/old")
    assert client.line() == '* LIST (\\HasNoChildren \\Subscribed) "/" "Lists/old" ("OLDNAME" ("Lists/new"))'
    other.ok("DELETE Lists/old")  # the subscription outlives the mailbox
    assert client.line() == '* LIST (\\NonExistent \\Subscribed) "/" "Lists/old"'
    assert client.line() == '* LIST (\\HasNoChildren) "/" "Lists"'
    other.ok("CREATE Elsewhere")  # outside the subtree
    client.ok("CREATE Lists/mine")  # this session's own change is not echoed (§5)
    assert client.ok("NOOP") == []


def test_notify_none_stops_events_and_watches_follow_new_mailboxes(client, other):
    client.ok("NOTIFY SET (personal (MessageNew MessageExpunge))")
    other.ok("CREATE later")  # created after NOTIFY SET, still personal (§6.2)
    client.ok("NOOP")
    other.append("later", message("x"))
    assert client.line() == '* STATUS "later" (MESSAGES 1 UIDNEXT 2)'
    client.ok("NOTIFY NONE")
    other.append("later", message("y"))
    assert client.ok("NOOP") == []


def test_a_change_made_by_another_process_arrives_at_the_periodic_recheck(server, user, client):
    """Mail committed through a store of its own (as the command line or another node would),
    which the server's in-process notifier never hears of: the session's re-check finds the
    watched mailbox's counters moved and sends the STATUS."""
    client.ok("CREATE elsewhere")
    client.ok("NOTIFY SET (personal (MessageNew MessageExpunge))")

    async def deliver() -> None:
        async with open_node(load_config(server.config_file)) as (s, stores):
            account = await s.accounts.get_user(user)
            writer = stores.blobs.writer()
            writer.write(b"Subject: from elsewhere\r\n\r\nnot through this server\r\n")
            await stores.meta.commit_ingest(IngestRecord("ELSEWHERE1", writer.finish(), "", time.time(),
                                                    (LocalDelivery(account.id, account.address, "elsewhere", b""),)))
    asyncio.run(deliver())
    assert client.line() == '* STATUS "elsewhere" (MESSAGES 1 UIDNEXT 2)'  # within RECHECK (5 s)
