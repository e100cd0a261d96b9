"""CONTEXT=SEARCH and CONTEXT=SORT over real sockets (RFC 5267 §4): PARTIAL, UPDATE, CANCELUPDATE."""

from __future__ import annotations

import pytest

from imap_client import ImapLines, message


@pytest.fixture
def client(server, user):
    conn = ImapLines(server.ports["imaps"], user)
    yield conn
    conn.close()


def fill(conn: ImapLines, count: int) -> None:
    for n in range(1, count + 1):
        conn.append("INBOX", message(f"m{n}"))
    conn.ok("SELECT INBOX")


def test_capabilities_include_context_search_and_sort(client):
    [caps] = client.ok("CAPABILITY")
    assert {"CONTEXT=SEARCH", "CONTEXT=SORT", "ESEARCH", "ESORT"} <= set(caps.split())


def test_search_partial_windows_in_mailbox_order(client):
    fill(client, 5)
    client.ok("STORE 3 +FLAGS.SILENT (\\Deleted)")
    cases = [("1:1", "1:1", "1"), ("2:4", "2:4", "2:4"), ("4:2", "2:4", "2:4"), ("1:10", "1:10", "1:5"),
             ("6:9", "6:9", "NIL"), ("-1:-2", "-1:-2", "4:5"), ("-2:-1", "-1:-2", "4:5"), ("-5:-9", "-5:-9", "1")]
    for asked, shown, result in cases:  # RFC 5267 §4.4; the negative ranges of RFC 9394 §3.1
        lines = client.ok(f"SEARCH RETURN (PARTIAL {asked}) ALL")
        assert lines == [f'* ESEARCH (TAG "t{client.count}") PARTIAL ({shown} {result})'], asked
    assert client.ok("SEARCH RETURN (PARTIAL 2:3 COUNT) UNDELETED") == [
        f'* ESEARCH (TAG "t{client.count}") PARTIAL (2:3 2,4) COUNT 4']


def test_uid_search_partial_skips_expunged_messages(client):
    fill(client, 4)
    uids = [line.split("UID ")[1].rstrip(")") for line in client.ok("FETCH 1:* UID")]
    client.ok("STORE 2 +FLAGS (\\Deleted)")
    client.ok("EXPUNGE")
    assert client.ok("UID SEARCH RETURN (PARTIAL 2:2) ALL") == [
        f'* ESEARCH (TAG "t{client.count}") UID PARTIAL (2:2 {uids[2]})']


def test_partial_with_all_or_without_a_range_is_bad(client):
    fill(client, 2)
    for bad in ("PARTIAL 1:2 ALL", "PARTIAL 1", "PARTIAL 1:*", "PARTIAL 0:1"):
        _lines, done = client.command(f"SEARCH RETURN ({bad}) ALL")
        assert done.split(" ")[1] == "BAD", bad


def test_sort_partial_follows_the_sort_order(client):
    for n, size in enumerate((300, 100, 200, 400, 250), 1):
        client.append("INBOX", message(f"m{n}", size))
    client.ok("SELECT INBOX")
    lines = client.ok("SORT RETURN (PARTIAL 1:3) (SIZE) US-ASCII ALL")
    assert lines == [f'* ESEARCH (TAG "t{client.count}") PARTIAL (1:3 2:3,5)']
    lines = client.ok("SORT RETURN (PARTIAL 2:4 MIN MAX) (REVERSE SIZE) US-ASCII ALL")
    assert lines == [f'* ESEARCH (TAG "t{client.count}") MIN 4 MAX 2 PARTIAL (2:4 1,5,3)']


def test_search_update_sends_addto_and_removefrom_until_cancelled(client):
    fill(client, 5)
    assert client.ok("SEARCH RETURN (UPDATE) SEEN") == [f'* ESEARCH (TAG "t{client.count}")']
    search = f'* ESEARCH (TAG "t{client.count}")'
    assert client.ok("STORE 1,2,4 +FLAGS.SILENT (\\Seen)") == [f"{search} ADDTO (0 1:2,4)"]
    assert client.ok("STORE 1,2 -FLAGS.SILENT (\\Seen)") == [f"{search} REMOVEFROM (0 1:2)"]
    client.ok("STORE 3:5 +FLAGS.SILENT (\\Deleted)")
    # REMOVEFROM names message 4 before the EXPUNGEs renumber it (RFC 5267 §4.3.4)
    assert client.ok("EXPUNGE") == [f"{search} REMOVEFROM (0 4)", "* 5 EXPUNGE", "* 4 EXPUNGE", "* 3 EXPUNGE"]
    # ADDTO for an appended message follows its EXISTS (RFC 5267 §4.3.3)
    lines = client.append("INBOX", message("new"), "\\Seen")
    assert lines[0] == "* 3 EXISTS"
    assert lines[-1] == f"{search} ADDTO (0 3)"
    client.ok(f'CANCELUPDATE "{search.split(chr(34))[1]}"')
    assert client.ok("STORE 1 +FLAGS.SILENT (\\Seen)") == []
    _lines, done = client.command(f'CANCELUPDATE "{search.split(chr(34))[1]}"')
    assert done.split(" ")[1] == "NO"


def test_changes_by_another_session_come_after_their_fetch(server, user, client):
    fill(client, 3)
    assert client.ok("UID SEARCH RETURN (UPDATE COUNT) FLAGGED") == [f'* ESEARCH (TAG "t{client.count}") UID COUNT 0']
    search = f'* ESEARCH (TAG "t{client.count}") UID'
    other = ImapLines(server.ports["imaps"], user)
    try:
        other.ok("SELECT INBOX")
        other.ok("STORE 2 +FLAGS.SILENT (\\Flagged)")
    finally:
        other.close()
    lines = client.ok("NOOP")
    assert lines[-1] == f"{search} ADDTO (0 2)"
    assert any(line.startswith("* 2 FETCH (UID 2 FLAGS (\\Flagged") for line in lines[:-1])  # RFC 5465 §5.1


def test_sort_update_names_positions_in_the_sorted_result(client):
    for n, size in enumerate((300, 100, 200, 400), 1):
        client.append("INBOX", message(f"m{n}", size))
    client.ok("SELECT INBOX")
    lines = client.ok("UID SORT RETURN (UPDATE ALL) (SIZE) US-ASCII UNSEEN")
    search = f'* ESEARCH (TAG "t{client.count}") UID'
    assert lines == [f"{search} ALL 2:3,1,4"]
    assert client.ok("STORE 3 +FLAGS.SILENT (\\Seen)") == [f"{search} REMOVEFROM (2 3)"]
    assert client.ok("STORE 3 -FLAGS.SILENT (\\Seen)") == [f"{search} ADDTO (2 3)"]
    lines = client.append("INBOX", message("m5", 250))
    assert lines[-1] == f"{search} ADDTO (3 5)"  # now 2, 3, 5, 1, 4
    client.ok("STORE 1,4 +FLAGS.SILENT (\\Deleted)")
    assert client.ok("EXPUNGE") == [f"{search} REMOVEFROM (4 1,4)", "* 4 EXPUNGE", "* 1 EXPUNGE"]


def test_tag_reuse_is_bad_and_another_selection_ends_the_context(client):
    fill(client, 2)
    client.send(b"dup SEARCH RETURN (UPDATE) SEEN")
    assert client.line() == '* ESEARCH (TAG "dup")'
    assert client.line().startswith("dup OK")
    client.send(b"dup SEARCH RETURN (UPDATE) SEEN")
    assert client.line().startswith("dup BAD")  # RFC 5267 §4.3
    assert client.ok("STORE 1 +FLAGS.SILENT (\\Seen)") == ['* ESEARCH (TAG "dup") ADDTO (0 1)']
    client.ok("SELECT INBOX")
    assert client.ok("STORE 2 +FLAGS.SILENT (\\Seen)") == []  # updates end with the selection
