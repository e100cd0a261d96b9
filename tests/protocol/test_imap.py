"""IMAP over real sockets with imaplib (RFC 3501 and the extensions dizimail advertises)."""

from __future__ import annotations

import imaplib
import re
import smtplib
import socket
import threading
import time
from email.header import Header

import pytest

from conftest import PASSWORD, client_tls
from helpers import fetch_all


def imap(server, user: str, password: str = PASSWORD) -> imaplib.IMAP4:
    conn = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=30)
    try:
        conn.starttls(client_tls())
        conn.login(user, password)
    except BaseException:
        conn.shutdown()
        raise
    return conn


def deliver(server, user: str, *messages: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        for m in messages:
            assert s.sendmail("sender@outside.example", [user], m) == {}


def ok(result):
    typ, data = result
    assert typ == "OK", data
    return data


def test_login_disabled_before_tls_and_capabilities(server, user):
    conn = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=30)
    assert "LOGINDISABLED" in conn.capabilities and "STARTTLS" in conn.capabilities
    with pytest.raises(imaplib.IMAP4.error):
        conn.login(user, PASSWORD)
    conn.starttls(client_tls())
    assert "AUTH=PLAIN" in conn.capabilities and "LOGINDISABLED" not in conn.capabilities
    ok(conn.login(user, PASSWORD))
    for cap in ("IDLE", "UIDPLUS", "MOVE", "NAMESPACE", "CONDSTORE", "SPECIAL-USE", "LITERAL+"):
        assert cap in conn.capabilities or cap in ok(conn.capability())[0].decode(), cap
    conn.logout()


def test_imaps_and_wrong_password(server, user):
    conn = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls(), timeout=30)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        conn.login(user, "wrong")
    ok(conn.login(user, PASSWORD))
    conn.logout()


def test_default_folders_with_special_use(server, user):
    conn = imap(server, user)
    listing = b"\n".join(ok(conn.list()))
    for name, use in (("Drafts", b"\\Drafts"), ("Sent", b"\\Sent"), ("Trash", b"\\Trash"), ("Junk", b"\\Junk"),
                      ("Archive", b"\\Archive")):
        assert re.search(rb"\(.*" + re.escape(use) + rb".*\) \"/\" \"?" + name.encode(), listing), (name, listing)
    assert b"INBOX" in listing
    conn.logout()


def test_select_fetch_peek_and_seen(server, user):
    deliver(server, user, b"Subject: first\r\nFrom: A <a@outside.example>\r\nTo: you@example.test\r\n\r\nbody one\r\n")
    conn = imap(server, user)
    typ, data = conn.select("INBOX")
    assert typ == "OK" and data == [b"1"]
    envelope = ok(conn.fetch("1", "(FLAGS ENVELOPE BODYSTRUCTURE RFC822.SIZE INTERNALDATE)"))[0]
    assert b'"first"' in envelope and b'("A" NIL "a" "outside.example")' in envelope
    assert b'"TEXT" "PLAIN"' in envelope.upper()
    assert b"\\Seen" not in ok(conn.fetch("1", "(FLAGS)"))[0]
    peek = ok(conn.fetch("1", "(BODY.PEEK[TEXT])"))
    assert peek[0][1] == b"body one\r\n"
    assert b"\\Seen" not in ok(conn.fetch("1", "(FLAGS)"))[0]
    ok(conn.fetch("1", "(BODY[HEADER.FIELDS (SUBJECT)])"))
    assert b"\\Seen" in ok(conn.fetch("1", "(FLAGS)"))[0]
    whole = ok(conn.uid("FETCH", "1:*", "(BODY.PEEK[])"))[0][1]
    assert whole.endswith(b"Subject: first\r\nFrom: A <a@outside.example>\r\nTo: you@example.test\r\n\r\nbody one\r\n")
    partial = ok(conn.fetch("1", "(BODY.PEEK[TEXT]<5.3>)"))[0]
    assert partial[0].endswith(b"BODY[TEXT]<5> {3}") and partial[1] == b"one"
    conn.logout()


def test_store_expunge_and_flags_seen_by_other_session(server, user):
    deliver(server, user, b"Subject: a\r\n\r\na\r\n", b"Subject: b\r\n\r\nb\r\n", b"Subject: c\r\n\r\nc\r\n")
    one, two = imap(server, user), imap(server, user)
    one.select("INBOX")
    two.select("INBOX")
    stored = ok(one.store("2", "+FLAGS", "(\\Deleted \\Flagged)"))
    assert b"\\Deleted" in stored[0] and b"\\Flagged" in stored[0]
    ok(two.noop())
    assert any(b"FETCH" in r and b"\\Deleted" in r for r in two.untagged_responses.get("FETCH", [b""])) or \
        b"\\Deleted" in ok(two.fetch("2", "(FLAGS)"))[0]
    assert ok(one.expunge()) == [b"2"]
    typ, data = two.noop()
    assert two.untagged_responses.get("EXPUNGE") == [b"2"]
    assert ok(two.search(None, "ALL"))[0] == b"1 2"
    one.logout()
    two.logout()


def test_a_list_page_fetched_again_follows_flag_changes_and_each_sessions_recent(server, user):
    """A list page's FETCH data are kept per message (imap/fetch.py ResponseCache) by UID and MODSEQ:
    a flag another session sets shows in the same FETCH sent again, \\Recent stays the claiming
    session's, and the data of one session are never another's."""
    deliver(server, user, b"Subject: page one\r\n\r\n1\r\n", b"Subject: page two\r\n\r\n2\r\n")
    page = "(UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"
    one = imap(server, user)
    one.select("INBOX")  # claims both as \\Recent
    first = ok(one.uid("FETCH", "1:*", page))
    assert b"\\Recent" in first[0][0] and b"Subject: page one" in first[0][1]
    assert ok(one.uid("FETCH", "1:*", page)) == first  # the same answer, from what was kept
    two = imap(server, user)
    two.select("INBOX")  # nothing left to claim: not \\Recent here
    seen_by_two = ok(two.uid("FETCH", "1:*", page))
    assert b"\\Recent" not in seen_by_two[0][0] and b"Subject: page one" in seen_by_two[0][1]
    ok(two.uid("STORE", "2", "+FLAGS", "(\\Flagged)"))
    again = ok(one.uid("FETCH", "1:*", page))
    flagged = [x for x in again if isinstance(x, tuple) and b"UID 2 " in x[0]]
    assert flagged and b"\\Flagged" in flagged[0][0] and b"\\Recent" in flagged[0][0], again
    assert b"\\Flagged" not in again[0][0]
    one.logout()
    two.logout()


def test_a_view_keeping_its_rows_follows_other_sessions(server, user):
    """A small mailbox's view keeps every row after the first FETCH; flag changes, expunges and
    new mail from elsewhere still reach its FETCH, SEARCH and STORE results."""
    deliver(server, user, b"Subject: a\r\n\r\na\r\n", b"Subject: b\r\n\r\nb\r\n", b"Subject: c\r\n\r\nc\r\n")
    one, two = imap(server, user), imap(server, user)
    one.select("INBOX")
    two.select("INBOX")
    assert len(ok(two.fetch("1:*", "(FLAGS)"))) == 3  # rows loaded and kept
    ok(one.store("1", "+FLAGS", "(\\Flagged)"))
    ok(one.store("2", "+FLAGS", "(\\Deleted)"))
    ok(one.expunge())
    deliver(server, user, b"Subject: d\r\n\r\nd\r\n")
    ok(two.noop())
    assert two.untagged_responses.get("EXPUNGE") == [b"2"]
    two.untagged_responses.clear()  # imaplib adds the FETCH the NOOP brought to the next command's
    fetched = b" ".join(ok(two.fetch("1:*", "(UID FLAGS)")))
    assert re.findall(rb"(\d+) \(UID (\d+) FLAGS \(([^)]*)\)\)", fetched) == [
        (b"1", b"1", b"\\Flagged"), (b"2", b"3", b""), (b"3", b"4", b"\\Recent")], fetched
    assert ok(two.search(None, "FLAGGED")) == [b"1"]
    assert ok(two.search(None, "SUBJECT", "d")) == [b"3"]
    assert b"\\Seen" in ok(two.store("3", "+FLAGS", "(\\Seen)"))[0]
    ok(one.noop())
    assert b"\\Seen" in ok(one.fetch("3", "(FLAGS)"))[0]
    ok(one.store("3", "-FLAGS", "(\\Seen)"))
    ok(two.noop())
    assert ok(two.search(None, "UNSEEN")) == [b"1 2 3"]
    one.logout()
    two.logout()


def test_copy_move_with_copyuid_and_append_with_appenduid(server, user):
    deliver(server, user, b"Subject: to move\r\n\r\nx\r\n", b"Subject: to copy\r\n\r\ny\r\n")
    conn = imap(server, user)
    conn.select("INBOX")
    typ, data = conn.uid("COPY", "2", "Archive")
    assert typ == "OK"
    uidvalidity, source, target = conn.untagged_responses.pop("COPYUID")[0].split()
    assert (source, target) == (b"2", b"1")
    typ, data = conn.uid("MOVE", "1", "Trash")
    assert typ == "OK"
    assert ok(conn.search(None, "ALL"))[0] == b"1"
    assert ok(conn.status("Trash", "(MESSAGES UIDNEXT)"))[0].endswith(b"(MESSAGES 1 UIDNEXT 2)")
    typ, data = conn.append("Drafts", "(\\Draft \\Seen)", None, b"Subject: draft\r\n\r\nwork in progress\r\n")
    assert typ == "OK" and b"APPENDUID" in data[0]
    conn.select("Drafts")
    assert b"\\Draft" in ok(conn.fetch("1", "(FLAGS)"))[0]
    typ, data = conn.append("NoSuchFolder", None, None, b"Subject: x\r\n\r\nx\r\n")
    assert typ == "NO" and b"TRYCREATE" in data[0]
    conn.logout()


def mutf7(name: str) -> str:
    from dizimail.codec.imap.utf7 import encode_mutf7

    return encode_mutf7(name)


def test_chinese_folder_create_rename_subscribe_delete(server, user):
    conn = imap(server, user)
    name = mutf7("已发送/2026年")
    assert name == "&XfJT0ZAB-/2026&XnQ-"
    ok(conn.create(f'"{name}"'))
    listing = b"\n".join(ok(conn.list('""', "*")))
    assert b"&XfJT0ZAB-/2026&XnQ-" in listing and b"&XfJT0ZAB-" in listing
    ok(conn.subscribe(f'"{name}"'))
    assert b"2026" in b"\n".join(d for d in ok(conn.lsub('""', "*")) if d)
    renamed = mutf7("已发送/2025年")
    ok(conn.rename(f'"{name}"', f'"{renamed}"'))
    ok(conn.select(f'"{renamed}"'))
    ok(conn.close())
    ok(conn.delete(f'"{renamed}"'))
    listing = b"\n".join(ok(conn.list('""', "*")))
    assert b"2025" not in listing
    conn.logout()


def test_search_chinese_text_finds_gb2312_message(server, user):
    subject = Header("电厂运行日报", "gb2312").encode()
    gb = (f"Subject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=gb2312\r\n"
          "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + "今天电厂发电量正常。\r\n".encode("gb2312")
    deliver(server, user, b"Subject: other\r\n\r\nnothing here\r\n", gb)
    conn = imap(server, user)
    conn.select("INBOX")
    conn.literal = "电厂".encode()
    assert ok(conn.search("UTF-8", "TEXT")) == [b"2"]
    conn.literal = "运行日报".encode()
    assert ok(conn.uid("SEARCH", "CHARSET", "UTF-8", "SUBJECT")) == [b"2"]
    typ, data = conn.uid("SEARCH", "SUBJECT", "other")
    assert data == [b"1"]
    conn.logout()


def test_idle_reports_new_mail_within_a_second_then_pop3_byte_exact(server, user):
    conn = imap(server, user)
    conn.select("INBOX")
    tag = conn._new_tag().decode()
    conn.send(f"{tag} IDLE\r\n".encode())
    assert conn.readline().startswith(b"+")
    body = b"Subject: live\r\n\r\narrives while idling\r\n"
    started = time.monotonic()
    threading.Thread(target=deliver, args=(server, user, body)).start()
    conn.sock.settimeout(5)
    line = conn.readline()
    elapsed = time.monotonic() - started
    assert line == b"* 1 EXISTS\r\n", line
    print(f"IDLE notification after {elapsed * 1000:.0f} ms")
    conn.send(b"DONE\r\n")
    while not (line := conn.readline()).startswith(tag.encode()):
        pass
    assert b"OK" in line
    ok(conn.store("1", "+FLAGS", "(\\Seen)"))
    conn.logout()
    [message] = fetch_all(server, user)
    assert message.endswith(body)


def test_uidvalidity_and_uids_survive_restart(tmp_path):
    from conftest import ServerThread, start_server

    srv = start_server(tmp_path)
    try:
        user = srv.add_user("restart")
        deliver(srv, user, b"Subject: 1\r\n\r\n1\r\n")
        conn = imap(srv, user)
        conn.select("INBOX")
        before = conn.untagged_responses["UIDVALIDITY"]
        conn.logout()
    finally:
        srv.stop()
    srv = ServerThread(srv.config_file, srv.ports)
    srv.start()
    try:
        conn = imap(srv, user)
        conn.select("INBOX")
        assert conn.untagged_responses["UIDVALIDITY"] == before
        assert ok(conn.uid("SEARCH", "ALL"))[0] == b"1"
        conn.logout()
    finally:
        srv.stop()


def test_malformed_commands_get_bad_and_session_goes_on(server, user):
    sock = socket.create_connection(("127.0.0.1", server.ports["imap"]), timeout=10)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    for bad in (b"a1 FETCH 1 (FLAGS\r\n", b"a2 FOO\r\n", b"a3 LOGIN {abc}\r\n", b"\r\n", b"a4 SELECT ((\r\n"):
        sock.sendall(bad)
        assert b"BAD" in f.readline()
    sock.sendall(b"a5 NOOP\r\n")
    assert f.readline() == b"a5 OK NOOP completed\r\n"
    sock.close()


def test_list_extended_and_list_status(server, user):
    deliver(server, user, b"Subject: s\r\n\r\nx\r\n")
    conn = imap(server, user)
    typ, data = conn._simple_command("LIST", "(SPECIAL-USE)", '""', "*", "RETURN", "(STATUS (MESSAGES UNSEEN))")
    assert typ == "OK"
    lists = conn.untagged_responses.pop("LIST")
    statuses = conn.untagged_responses.pop("STATUS")
    assert any(b"\\Sent" in line for line in lists) and not any(b"INBOX" in line for line in lists)
    assert len(statuses) == len(lists) == 5
    typ, data = conn._simple_command("LIST", '""', "INBOX", "RETURN", "(STATUS (MESSAGES UNSEEN) SUBSCRIBED)")
    assert conn.untagged_responses.pop("STATUS") == [b'"INBOX" (MESSAGES 1 UNSEEN 1)']
    assert b"\\Subscribed" in conn.untagged_responses.pop("LIST")[0]
    conn.logout()


def status_of(conn: imaplib.IMAP4, mailbox: str) -> bytes:
    return ok(conn.status(mailbox, "(MESSAGES UNSEEN UIDNEXT RECENT DELETED)"))[0]


def test_status_of_the_selected_mailbox_is_as_the_session_last_synchronised(server, user):
    """RFC 9051 §6.3.11: STATUS is no way to look for new mail in the selected mailbox. As Dovecot does,
    the selected mailbox answers as the session last saw it (SELECT, or the poll after a command), its
    own changes included; any other mailbox answers as it is now."""
    deliver(server, user, b"Subject: one\r\n\r\nx\r\n")
    conn, other = imap(server, user), imap(server, user)
    ok(conn.select("INBOX"))
    assert status_of(conn, "INBOX") == b'"INBOX" (MESSAGES 1 UNSEEN 1 UIDNEXT 2 RECENT 1 DELETED 0)'
    deliver(server, user, b"Subject: two\r\n\r\nx\r\n")
    ok(other.select("INBOX"))
    ok(other.store("1", "+FLAGS", "(\\Seen)"))
    ok(other.append("Sent", "(\\Seen)", None, b"Subject: sent\r\n\r\nx\r\n"))
    assert status_of(conn, "INBOX") == b'"INBOX" (MESSAGES 1 UNSEEN 1 UIDNEXT 2 RECENT 1 DELETED 0)'
    assert status_of(conn, "Sent") == b'"Sent" (MESSAGES 1 UNSEEN 0 UIDNEXT 2 RECENT 1 DELETED 0)'
    assert status_of(other, "INBOX") == b'"INBOX" (MESSAGES 2 UNSEEN 1 UIDNEXT 3 RECENT 1 DELETED 0)'
    ok(conn.noop())  # the session hears of the new message (\Recent for the other, who saw it first) and the flag
    assert status_of(conn, "INBOX") == b'"INBOX" (MESSAGES 2 UNSEEN 1 UIDNEXT 3 RECENT 1 DELETED 0)'
    ok(conn.store("2", "+FLAGS", "(\\Seen \\Deleted)"))  # its own change shows at once
    assert status_of(conn, "INBOX") == b'"INBOX" (MESSAGES 2 UNSEEN 0 UIDNEXT 3 RECENT 1 DELETED 1)'
    ok(conn.expunge())
    assert status_of(conn, "INBOX") == b'"INBOX" (MESSAGES 1 UNSEEN 0 UIDNEXT 3 RECENT 1 DELETED 0)'
    ok(conn.select("Sent"))  # INBOX is no longer selected: it answers as it is now
    ok(other.store("1", "-FLAGS", "(\\Seen)"))
    assert status_of(conn, "INBOX") == b'"INBOX" (MESSAGES 1 UNSEEN 1 UIDNEXT 3 RECENT 0 DELETED 0)'
    conn.logout()
    other.logout()


def test_searchres_saves_a_result_for_later_commands(server, user):
    deliver(server, user, b"Subject: keep\r\n\r\nx\r\n", b"Subject: flag me\r\n\r\ny\r\n", b"Subject: flag me too\r\n\r\nz\r\n")
    conn = imap(server, user)
    conn.select("INBOX")
    ok(conn._simple_command("UID", "SEARCH", "RETURN", "(SAVE)", "SUBJECT", '"flag me"'))
    ok(conn._simple_command("UID", "STORE", "$", "+FLAGS.SILENT", "(\\Flagged)"))
    assert ok(conn.search(None, "FLAGGED")) == [b"2 3"]
    conn.logout()


def test_qresync_reports_vanished_and_changed_since_a_modseq(server, user):
    deliver(server, user, *[f"Subject: m{i}\r\n\r\n{i}\r\n".encode() for i in range(1, 5)])
    first = imap(server, user)
    ok(first._simple_command("ENABLE", "QRESYNC"))
    first.select("INBOX")
    uidvalidity = int(first.untagged_responses["UIDVALIDITY"][0])
    modseq = int(first.untagged_responses["HIGHESTMODSEQ"][0])
    first.logout()
    other = imap(server, user)
    other.select("INBOX")
    ok(other.store("2", "+FLAGS", "(\\Flagged)"))
    ok(other.store("3", "+FLAGS", "(\\Deleted)"))
    ok(other.expunge())
    other.logout()
    again = imap(server, user)
    ok(again._simple_command("ENABLE", "QRESYNC"))
    typ, data = again._simple_command("SELECT", "INBOX", f"(QRESYNC ({uidvalidity} {modseq} 1:4))")
    assert typ == "OK"
    again.state = "SELECTED"  # imaplib does not know SELECT with parameters
    assert again.untagged_responses.pop("VANISHED") == [b"(EARLIER) 3"]
    fetches = again.untagged_responses.pop("FETCH")
    assert any(b"UID 2 " in f and b"\\Flagged" in f and b"MODSEQ" in f for f in fetches)
    ok(again.store("1", "+FLAGS", "(\\Deleted)"))
    ok(again._simple_command("EXPUNGE"))
    assert again.untagged_responses.pop("VANISHED") == [b"1"]
    again.logout()


def test_sort_and_thread(server, user):
    deliver(server, user,
            b"Subject: Beta\r\nFrom: zed@x.example\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\nMessage-ID: <1@x>\r\n\r\nbbbb\r\n",
            b"Subject: Re: alpha\r\nFrom: amy@x.example\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\nMessage-ID: <2@x>\r\n"
            b"In-Reply-To: <3@x>\r\nReferences: <3@x>\r\n\r\na\r\n",
            b"Subject: alpha\r\nFrom: bob@x.example\r\nDate: Sun, 1 Mar 2026 10:00:00 +0000\r\nMessage-ID: <3@x>\r\n\r\naaaaaaaa\r\n")
    conn = imap(server, user)
    conn.select("INBOX")
    assert ok(conn.sort("(SUBJECT)", "UTF-8", "ALL")) == [b"2 3 1"]  # equal base subjects: by number
    assert ok(conn.sort("(REVERSE DATE)", "UTF-8", "ALL")) == [b"2 1 3"]
    assert ok(conn.sort("(FROM)", "UTF-8", "ALL")) == [b"2 3 1"]
    assert ok(conn.thread("REFERENCES", "UTF-8", "ALL")) == [b"(3 2)(1)"]
    assert ok(conn.thread("ORDEREDSUBJECT", "UTF-8", "ALL")) == [b"(3 2)(1)"]
    conn.logout()


def test_search_from_matches_the_parsed_address(server, user):
    deliver(server, user, b"From: <user-from (comment)@ (comment) domain.org>\r\nSubject: odd\r\n\r\nx\r\n",
            b"From: Someone <other@domain.org>\r\nSubject: plain\r\n\r\ny\r\n")
    conn = imap(server, user)
    conn.select("INBOX")
    assert ok(conn.search(None, "FROM", "user-from@domain.org")) == [b"1"]
    conn.logout()


class Raw:
    """A tiny raw IMAP client over implicit TLS (for what imaplib cannot send)."""

    def __init__(self, server, user):
        import zlib

        self.zlib = zlib
        self.sock = client_tls().wrap_socket(socket.create_connection(("127.0.0.1", server.ports["imaps"]), timeout=15),
                                             server_hostname="localhost")
        self.inflate = self.deflate = None
        self.pending = b""
        assert self.line().startswith(b"* OK")
        self.command(f"LOGIN {user} {PASSWORD}")

    def send(self, data: bytes) -> None:
        if self.deflate is not None:
            data = self.deflate.compress(data) + self.deflate.flush(self.zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def line(self) -> bytes:
        while b"\r\n" not in self.pending:
            data = self.sock.recv(65536)
            assert data, "connection closed"
            self.pending += self.inflate.decompress(data) if self.inflate is not None else data
        line, _, self.pending = self.pending.partition(b"\r\n")
        return line

    def command(self, text: str | bytes, tag: str = "t") -> list[bytes]:
        self.send(f"{tag} ".encode() + (text.encode() if isinstance(text, str) else text) + b"\r\n")
        lines = []
        while not (line := self.line()).startswith(f"{tag} ".encode()):
            lines.append(line)
        assert line.startswith(f"{tag} OK".encode()), (text, line, lines)
        return lines


def test_compress_deflate(server, user):
    deliver(server, user, b"Subject: squeezed\r\n\r\n" + b"compressible text " * 200 + b"\r\n")
    raw = Raw(server, user)
    raw.command("COMPRESS DEFLATE", tag="c")
    raw.inflate, raw.deflate = raw.zlib.decompressobj(-15), raw.zlib.compressobj(6, raw.zlib.DEFLATED, -15)
    raw.command("SELECT INBOX")
    lines = raw.command("FETCH 1 (BODY.PEEK[TEXT])")
    assert lines[0].startswith(b"* 1 FETCH (BODY[TEXT] {")
    assert raw.pending.count(b"compressible text") or any(b"compressible" in x for x in lines)
    raw.command("NOOP")
    raw.sock.close()


def test_utf8_accept_mailbox_names(server, user):
    raw = Raw(server, user)
    assert raw.command("ENABLE UTF8=ACCEPT") == [b"* ENABLED UTF8=ACCEPT"]
    raw.command('CREATE "项目/二〇二六"'.encode() + b"")
    lines = raw.command('LIST "" "项目/*"'.encode())
    assert lines == ['* LIST (\\HasNoChildren) "/" "项目/二〇二六"'.encode()]
    raw.sock.close()
    conn = imap(server, user)  # a client without UTF8=ACCEPT sees modified UTF-7
    assert mutf7("项目/二〇二六").encode() in b"\n".join(ok(conn.list('""', "*")))
    conn.logout()


def test_binary_append_and_fetch(server, user):
    raw = Raw(server, user)
    body = b"Subject: bin\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\xff"
    raw.send(b"t APPEND INBOX ~{%d+}\r\n" % len(body) + body + b"\r\n")
    while not (line := raw.line()).startswith(b"t "):
        pass
    assert line.startswith(b"t OK"), line
    raw.command("SELECT INBOX")
    lines = raw.command("FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])")
    assert b"BINARY.SIZE[1] 3" in lines[0] and b"~{3}" in lines[0]
    assert lines[1].startswith(b"\x00\x01\xff")  # unchanged in a literal8
    lines = raw.command("FETCH 1 (BODY.PEEK[1])")
    assert lines[1].startswith(b"\x80\x01\xff")  # no NUL inside an ordinary literal
    raw.sock.close()


def test_catenate_builds_a_message_from_text_and_an_existing_part(server, user):
    deliver(server, user, b"Subject: source\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                          b"Content-Type: text/plain\r\n\r\nfirst part\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
                          b"second part\r\n--b--\r\n")
    raw = Raw(server, user)
    lines = raw.command("SELECT INBOX")
    uidvalidity = next(x for x in lines if b"UIDVALIDITY" in x).split(b"UIDVALIDITY ")[1].split(b"]")[0].decode()
    head = b"Subject: built\r\n\r\n"
    raw.command(f'APPEND Drafts CATENATE (TEXT {{{len(head)}+}}\r\n'.encode() + head +
                f' URL "/INBOX;UIDVALIDITY={uidvalidity}/;UID=1/;SECTION=2")'.encode())
    raw.sock.close()
    conn = imap(server, user)
    conn.select("Drafts")
    assert ok(conn.fetch("1", "(BODY.PEEK[])"))[0][1] == b"Subject: built\r\n\r\nsecond part"
    conn.logout()


def test_list_recursivematch_reports_childinfo(server, user):
    conn = imap(server, user)
    ok(conn.create("proj"))
    ok(conn.create("proj/a"))
    ok(conn.subscribe("proj/a"))
    typ, data = conn._simple_command("LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', "proj", "RETURN", "(CHILDREN)")
    assert typ == "OK"
    assert conn.untagged_responses.pop("LIST") == [b'(\\HasChildren) "/" "proj" ("CHILDINFO" ("SUBSCRIBED"))']
    typ, data = conn._simple_command("LIST", "(SUBSCRIBED)", '""', "proj*")
    assert conn.untagged_responses.pop("LIST") == [b'(\\Subscribed) "/" "proj/a"']
    conn.logout()


def test_subscriptions_outlive_their_mailbox(server, user):
    conn = imap(server, user)
    ok(conn.create("temporary"))
    ok(conn.subscribe("temporary"))
    ok(conn.delete("temporary"))
    typ, data = conn._simple_command("LIST", "(SUBSCRIBED)", '""', "temp*")
    assert conn.untagged_responses.pop("LIST") == [b'(\\Subscribed \\NonExistent) "/" "temporary"']
    ok(conn.unsubscribe("temporary"))
    assert ok(conn.lsub('""', "temp*")) == [None]
    conn.logout()


def test_header_fields_come_from_the_header_alone_long_or_short_and_again_the_same(server, user):
    """BODY.PEEK[HEADER.FIELDS (...)] (a webmail's message list) reads only a message's header and
    keeps the answer; a header longer than the first read, the trace fields of the copy (Delivered-To)
    and .NOT must come out byte for byte as stored, at the first FETCH and at the next."""
    long_field = b"X-Long: " + b"y" * 20_000 + b"\r\n"
    deliver(server, user, b"Subject: short\r\nX-Other: 1\r\n\r\nbody\r\n",
            long_field + b"Subject: after a long field\r\n\r\n" + b"z" * 50_000 + b"\r\n")
    conn = imap(server, user)
    conn.select("INBOX")
    for _ in range(2):
        data = ok(conn.fetch("1:2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT DELIVERED-TO)])"))
        assert data[0][1] == f"Delivered-To: {user}\r\nSubject: short\r\n\r\n".encode()
        assert data[2][1] == f"Delivered-To: {user}\r\nSubject: after a long field\r\n\r\n".encode()
        data = ok(conn.fetch("2", "(BODY.PEEK[HEADER.FIELDS.NOT (RETURN-PATH DELIVERED-TO RECEIVED)])"))
        assert data[0][1] == long_field + b"Subject: after a long field\r\n\r\n"
    assert ok(conn.fetch("1", "(FLAGS)")) == [b"1 (FLAGS (\\Recent))"]  # PEEK: nothing became \Seen
    conn.logout()
