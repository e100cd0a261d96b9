"""IMAP under hostile input: the session answers BAD/NO and goes on; others are not disturbed."""

from __future__ import annotations

import imaplib
import resource
import socket
import time

from conftest import PASSWORD, client_tls, start_server


def raw_session(port: int) -> tuple[socket.socket, object]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    return sock, f


def login_plain(server, user):
    conn = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls(), timeout=30)
    conn.login(user, PASSWORD)
    return conn


def test_literal_over_appendlimit_is_refused_without_reading_it(server, user):
    conn = login_plain(server, user)
    limit = server.config.limits.max_message_size
    tag = conn._new_tag().decode()
    conn.send(f"{tag} APPEND INBOX {{{50 * 1024 * 1024}}}\r\n".encode())
    reply = conn.readline()
    assert reply.startswith(f"{tag} ".encode()) and (b"TOOBIG" in reply or b"BAD" in reply), reply
    assert limit < 50 * 1024 * 1024
    # non-synchronizing: the server must swallow the bytes and refuse, then carry on
    tag = conn._new_tag().decode()
    size = limit + 1
    conn.send(f"{tag} APPEND INBOX {{{size}+}}\r\n".encode())
    chunk = b"x" * (1 << 20)
    sent = 0
    while sent < size:
        part = chunk[: min(len(chunk), size - sent)]
        conn.send(part)
        sent += len(part)
    conn.send(b"\r\n")
    reply = conn.readline()
    while reply.startswith(b"*"):
        reply = conn.readline()
    assert reply.startswith(f"{tag} NO".encode()) and b"TOOBIG" in reply, reply
    assert conn.noop()[0] == "OK"
    conn.logout()


def test_unbalanced_parentheses_and_bogus_literals(server, user):
    sock, f = raw_session(server.ports["imap"])
    for line in (b"a1 FETCH 1 (FLAGS (UID\r\n", b"a2 SEARCH (((ALL\r\n", b"a3 LOGIN {-5}\r\n",
                 b"a4 LOGIN {99999999999999999999}\r\n", b"a5 STORE 1 +FLAGS (\\Seen))\r\n", b"a6 \x00\xff\r\n"):
        sock.sendall(line)
        reply = f.readline()
        assert b"BAD" in reply or b"NO" in reply, (line, reply)
    sock.sendall(b"a7 CAPABILITY\r\n")
    assert f.readline().startswith(b"* CAPABILITY")
    assert f.readline().startswith(b"a7 OK")
    sock.close()


def test_thousand_idle_sessions_while_another_client_works(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(8192, hard), hard))
    srv = start_server(tmp_path, "plaintext_networks = [\"127.0.0.0/8\"]\n[limits]\nmax_connections_per_ip = 2000\n")
    idlers: list[socket.socket] = []
    try:
        user = srv.add_user("idler")
        for _ in range(1000):
            sock = socket.create_connection(("127.0.0.1", srv.ports["imap"]), timeout=30)
            idlers.append(sock)
        # log them in and IDLE in bulk: pipelined LOGIN, SELECT, IDLE
        for sock in idlers:
            sock.sendall(f"l LOGIN {user} {PASSWORD}\r\ns SELECT INBOX\r\ni IDLE\r\n".encode())
        deadline = time.monotonic() + 60
        for sock in idlers:
            buf = b""
            while b"+ idling" not in buf and time.monotonic() < deadline:
                buf += sock.recv(4096)
            assert b"+ idling" in buf
        worker = login_plain(srv, user)
        worker.select("INBOX")
        worker.append("INBOX", None, None, b"Subject: while idling\r\n\r\nhello\r\n")
        assert worker.search(None, "ALL") == ("OK", [b"1"])
        worker.logout()
        woken = 0
        for sock in idlers[:50]:
            sock.settimeout(5)
            if b"EXISTS" in sock.recv(4096):
                woken += 1
        assert woken == 50
    finally:
        for sock in idlers:
            sock.close()
        srv.stop()


def test_saved_search_before_any_save_is_the_empty_set(server, user):
    """RFC 5182 §2.1: "$" names the empty set until a SEARCH RETURN (SAVE); every form of it is
    answered, and the session goes on (each used to end the session with a traceback)."""
    from imap_client import ImapLines, message

    client = ImapLines(server.ports["imaps"], user)
    try:
        for n in range(1, 4):
            client.append("INBOX", message(f"m{n}"))
        client.ok("SELECT INBOX")
        assert client.ok("SEARCH $ ALL") == ["* SEARCH"]
        assert client.ok("SEARCH ($)") == ["* SEARCH"]
        assert client.ok("UID SEARCH UID $") == ["* SEARCH"]
        assert client.ok("SORT (DATE) UTF-8 $") == ["* SORT"]
        assert client.ok("THREAD REFERENCES UTF-8 $") == ["* THREAD"]
        client.ok("SEARCH RETURN (SAVE) 2:3")
        assert client.ok("SEARCH $") == ["* SEARCH 2 3"]
        assert client.ok("UID SEARCH NOT UID $") == ["* SEARCH 1"]
        client.ok("NOOP")
    finally:
        client.close()


def test_saved_search_in_uid_expunge_and_fetch_vanished(server, user):
    """The last two commands that took "$" and died with a ValueError: UID EXPUNGE $ and UID FETCH $ with
    VANISHED; before any SAVE "$" is empty, after one it is the saved UIDs (RFC 5182, RFC 7162 §3.2.6)."""
    from imap_client import ImapLines, message

    client = ImapLines(server.ports["imaps"], user)
    try:
        for n in range(1, 5):
            client.append("INBOX", message(f"v{n}"))
        client.ok("ENABLE QRESYNC")
        lines = client.ok("SELECT INBOX")
        modseq = next(int(line.split()[3].rstrip("]")) for line in lines if "HIGHESTMODSEQ" in line)
        client.ok("STORE 1:4 +FLAGS (\\Deleted)")
        assert not any("VANISHED" in line for line in client.ok("UID EXPUNGE $"))  # nothing saved: nothing goes
        uids = [int(w) for w in client.ok("UID SEARCH ALL")[0].split()[2:]]
        client.ok(f"UID SEARCH RETURN (SAVE) UID {uids[1]}:{uids[2]}")
        assert client.ok("UID EXPUNGE $") == [f"* VANISHED {uids[1]}:{uids[2]}"]
        # Expunged messages leave "$" (RFC 5182 §2.1): it is empty now, and VANISHED has nothing of it.
        assert client.ok(f"UID FETCH $ (FLAGS) (CHANGEDSINCE {modseq} VANISHED)") == []
        client.ok(f"UID SEARCH RETURN (SAVE) UID {uids[0]}:{uids[3]}")
        lines = client.ok(f"UID FETCH $ (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
        assert [line.split()[4] for line in lines] == [str(uids[0]), str(uids[3])]
        client.ok("NOOP")
    finally:
        client.close()
