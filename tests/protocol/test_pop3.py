"""POP3 over real sockets (RFC 1939, 2449, 2595, 5034)."""

from __future__ import annotations

import base64
import poplib
import smtplib

import pytest

from conftest import PASSWORD, ServerThread, client_tls
from helpers import RawClient, body_of, pop3


def deliver(server, user: str, *bodies: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        for body in bodies:
            assert s.sendmail("a@outside.example", [user], body) == {}


def test_capa_before_and_after_stls(server):
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=30)
    caps = p.capa()
    assert "STLS" in caps and "USER" not in caps and "SASL" not in caps
    p.stls(client_tls())
    caps = p.capa()
    assert "STLS" not in caps and "USER" in caps and caps["SASL"] == ["PLAIN", "LOGIN"]
    assert {"TOP", "UIDL", "RESP-CODES", "PIPELINING"} <= set(caps)
    p.quit()


def test_user_pass_refused_without_tls(server, user):
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=30)
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        p.user(user)
    p.quit()


def test_stat_list_uidl_retr_top(server, user):
    deliver(server, user, b"Subject: one\r\n\r\nfirst body\r\n", b"Subject: two\r\n\r\nline1\r\n.line2\r\nline3\r\n")
    p = pop3(server, user)
    count, total = p.stat()
    assert count == 2
    listing = p.list()[1]
    sizes = [int(entry.split()[1]) for entry in listing]
    assert sum(sizes) == total
    uids = [entry.split()[1] for entry in p.uidl()[1]]
    assert len(set(uids)) == 2
    lines = p.retr(2)[1]
    assert sum(len(line) + 2 for line in lines) == sizes[1], "RETR size matches LIST"
    assert body_of(b"\r\n".join(lines) + b"\r\n") == b"Subject: two\r\n\r\nline1\r\n.line2\r\nline3\r\n"
    top = p.top(2, 1)[1]
    assert top[-2:] == [b"", b"line1"]
    assert p.noop().startswith(b"+OK")
    p.quit()


def test_uidl_is_stable_across_sessions_and_restarts(tmp_path):
    from conftest import start_server

    srv = start_server(tmp_path)
    try:
        user = srv.add_user("stable")
        deliver(srv, user, b"Subject: a\r\n\r\na\r\n", b"Subject: b\r\n\r\nb\r\n")
        p = pop3(srv, user)
        first = p.uidl()[1]
        p.quit()
    finally:
        srv.stop()
    srv = ServerThread(srv.config_file, srv.ports)
    srv.start()
    try:
        p = pop3(srv, user)
        assert p.uidl()[1] == first
        p.dele(1)
        p.quit()
        p = pop3(srv, user)
        assert p.uidl()[1] == [b"1 " + first[1].split()[1]]
        p.quit()
    finally:
        srv.stop()


def test_dele_rset_and_quit_update_semantics(server, user):
    deliver(server, user, b"Subject: 1\r\n\r\n1\r\n", b"Subject: 2\r\n\r\n2\r\n", b"Subject: 3\r\n\r\n3\r\n")
    p = pop3(server, user)
    p.dele(1)
    with pytest.raises(poplib.error_proto):
        p.retr(1)
    assert p.stat()[0] == 2
    p.rset()
    assert p.stat()[0] == 3
    p.dele(2)
    p.quit()
    p = pop3(server, user)
    assert p.stat()[0] == 2
    subjects = [p.top(i, 0)[1] for i in (1, 2)]
    assert [b"Subject: 1" in s for s in subjects] == [True, False]
    p.quit()


def test_deletions_without_quit_are_not_applied(server, user):
    deliver(server, user, b"Subject: keep\r\n\r\nx\r\n")
    p = pop3(server, user)
    p.dele(1)
    p.file.close()
    p.sock.close()  # connection dropped: RFC 1939 §6 says nothing is removed
    p = pop3(server, user)
    assert p.stat()[0] == 1
    p.quit()


def test_second_session_gets_in_use(server, user):
    first = pop3(server, user)
    second = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=client_tls(), timeout=30)
    second.user(user)
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        second.pass_(PASSWORD)
    first.quit()
    second.user(user)
    assert second.pass_(PASSWORD).startswith(b"+OK")
    second.quit()


def test_auth_plain_with_initial_response_and_wrong_password(server, user):
    raw = RawClient(server.ports["pop3s"])
    raw.sock = client_tls().wrap_socket(raw.sock, server_hostname="localhost")
    raw.file = raw.sock.makefile("rb")
    assert raw.line().startswith(b"+OK")
    bad = base64.b64encode(f"\0{user}\0nope".encode())
    raw.send(b"AUTH PLAIN " + bad + b"\r\n")
    assert raw.line().startswith(b"-ERR [AUTH]")
    good = base64.b64encode(f"\0{user}\0{PASSWORD}".encode())
    raw.send(b"AUTH PLAIN\r\n")
    assert raw.line() == b"+ "
    raw.send(good + b"\r\n")
    assert raw.line().startswith(b"+OK")
    raw.send(b"STAT\r\nNOOP\r\nQUIT\r\n")  # pipelined (RFC 2449 PIPELINING)
    assert raw.line().startswith(b"+OK 0")
    assert raw.line().startswith(b"+OK")
    assert raw.line().startswith(b"+OK")
    raw.close()


def test_transaction_commands_need_login(server):
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=30)
    with pytest.raises(poplib.error_proto):
        p.stat()
    p.quit()


def test_retr_of_large_message_is_byte_exact(server, user):
    body = b"Subject: big\r\n\r\n" + b"".join(b"%06d .line with a dot at start\r\n.%06d\r\n" % (i, i)
                                              for i in range(40000))
    deliver(server, user, body)
    p = pop3(server, user)
    lines = p.retr(1)[1]
    assert body_of(b"\r\n".join(lines) + b"\r\n") == body
    p.quit()


def test_plaintext_login_only_from_configured_networks(tmp_path):
    from conftest import start_server

    srv = start_server(tmp_path, 'plaintext_networks = ["127.0.0.0/8"]\n')  # appended to [auth]
    try:
        user = srv.add_user("plain")
        p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=30)
        assert "USER" in p.capa()
        p.user(user)
        assert p.pass_(PASSWORD).startswith(b"+OK")
        p.quit()
    finally:
        srv.stop()


def test_deleted_message_file_is_swept_after_the_grace_period(tmp_path):
    import time

    from conftest import ServerThread, write_config

    config_file, ports = write_config(tmp_path)
    config_file.write_text(config_file.read_text().replace("[storage]\n", "[storage]\nblob_grace = 0\nsweep_interval = 0.2\n"))
    srv = ServerThread(config_file, ports)
    srv.start()
    try:
        user = srv.add_user("sweep")
        deliver(srv, user, b"Subject: gone soon\r\n\r\n" + b"unique body 7f3a\r\n")
        blob_dir = srv.config.path(srv.config.storage.blob_dir)

        def files() -> list:
            return [p for p in blob_dir.rglob("*") if p.is_file() and b"unique body 7f3a" in p.read_bytes()]
        assert len(files()) == 1
        p = pop3(srv, user)
        p.dele(1)
        p.quit()
        deadline = time.monotonic() + 10
        while files() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert files() == []
    finally:
        srv.stop()
