"""ManageSieve (RFC 5804, issue #12) over real sockets: sievelib's client as a peer, and raw commands for
what no polite client sends."""

from __future__ import annotations

import base64
import smtplib
import socket
import ssl

import pytest
from sievelib import managesieve

from conftest import PASSWORD, client_tls
from helpers import fetch_all, imap_login

SCRIPT = 'require ["fileinto"];\r\nif header :contains "subject" "周报" {\r\n  fileinto "报告";\r\n}\r\n'


@pytest.fixture
def sieve_client(server, user, monkeypatch):
    # sievelib verifies the server's certificate with the system's CAs; the test node's is self-signed.
    context = client_tls()
    monkeypatch.setattr(managesieve.ssllib, "create_default_context", lambda *args, **kwargs: context)
    client = managesieve.Client("127.0.0.1", server.ports["managesieve"])
    assert client.connect(user, PASSWORD, starttls=True, authmech="PLAIN"), client.errmsg
    yield client
    client.logout()


def test_sievelib_stores_lists_activates_and_mail_follows_the_script(server, user, sieve_client):
    c = sieve_client
    assert "fileinto" in c.get_sieve_capabilities() and "vacation" in c.get_sieve_capabilities()
    assert c.havespace("周报规则", len(SCRIPT.encode()))
    assert c.putscript("周报规则", SCRIPT)
    assert c.putscript("other", "keep;")
    assert c.setactive("周报规则")
    active, others = c.listscripts()
    assert active == "周报规则" and others == ["other"]
    assert c.getscript("周报规则") == SCRIPT.replace("\r\n", "\n").rstrip("\n")  # as sievelib returns it
    assert not c.deletescript("周报规则")  # the active one stays
    assert c.renamescript("other", "其他") and c.deletescript("其他")
    with imap_login(server, user) as imap:
        assert imap.create('"&YqVUSg-"')[0] == "OK"  # 报告
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        s.sendmail("a@outside.test", [user], b"Subject: =?utf-8?b?5pys5ZGo5ZGo5oql?=\r\n\r\nx\r\n")  # 本周周报
    with imap_login(server, user) as imap:
        imap.select('"&YqVUSg-"', readonly=True)
        assert imap.search(None, "ALL")[1][0].split() == [b"1"]
    assert fetch_all(server, user) == []


def test_a_script_with_an_error_is_refused_with_its_line(sieve_client):
    c = sieve_client
    assert not c.putscript("bad", 'require "fileinto";\nif true {\n  fileinto "x"\n}\n')
    assert b"line 4" in c.errmsg
    assert not c.checkscript('bogus;')
    assert b"line 1" in c.errmsg and b"bogus" in c.errmsg
    assert c.checkscript("keep;")
    assert c.listscripts() == (None, [])
    assert not c.havespace("big", 70_000)


class Raw:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def upto_status(self) -> list[bytes]:
        lines = []
        while True:
            line = self.file.readline()
            assert line, "connection closed"
            lines.append(line)
            if line.startswith((b"OK", b"NO", b"BYE")):
                return lines

    def send(self, data: bytes) -> list[bytes]:
        self.sock.sendall(data)
        return self.upto_status()

    def starttls(self) -> None:
        assert self.send(b"STARTTLS\r\n")[-1].startswith(b"OK")
        self.sock = client_tls().wrap_socket(self.sock, server_hostname="mx.example.test")
        self.file = self.sock.makefile("rb")
        again = self.upto_status()
        assert any(b'"SASL" "PLAIN LOGIN"' in line for line in again), again

    def close(self) -> None:
        self.sock.close()


def _plain(user: str, password: str) -> bytes:
    return base64.b64encode(f"\0{user}\0{password}".encode())


def test_authentication_needs_tls_and_the_greeting_says_so(server, user):
    raw = Raw(server.ports["managesieve"])
    try:
        greeting = raw.upto_status()
        assert b'"STARTTLS"\r\n' in greeting and b'"SASL" ""\r\n' in greeting
        refused = raw.send(b'AUTHENTICATE "PLAIN" "' + _plain(user, PASSWORD) + b'"\r\n')
        assert refused[-1].startswith(b"NO (ENCRYPT-NEEDED)")
        assert raw.send(b"LISTSCRIPTS\r\n")[-1].startswith(b"NO")
        raw.starttls()
        # A literal answers the server's challenge (no initial response).
        raw.sock.sendall(b'AUTHENTICATE "PLAIN"\r\n')
        assert raw.file.readline() == b'""\r\n'
        answer = _plain(user, PASSWORD)
        assert raw.send(b"{%d+}\r\n" % len(answer) + answer + b"\r\n")[-1].startswith(b"OK")
        listed = raw.send(b"PUTSCRIPT \"s\" {6+}\r\nkeep;\n\r\n")
        assert listed[-1].startswith(b"OK"), listed
        got = raw.send(b'GETSCRIPT "s"\r\n')
        assert got[0] == b"{6}\r\n" and got[1] == b"keep;\n"
        assert raw.send(b'NOOP "x"\r\n')[-1] == b'OK (TAG "x") "Done"\r\n'
        assert raw.send(b"LOGOUT\r\n")[-1].startswith(b"OK")
    finally:
        raw.close()


def test_bad_input_gets_a_reply_and_the_session_goes_on(server, user):
    raw = Raw(server.ports["managesieve"])
    try:
        raw.upto_status()
        assert raw.send(b"FROB\r\n")[-1].startswith(b"NO")
        assert raw.send(b'CAPABILITY "x"\r\n')[-1].startswith(b"NO")
        assert raw.send(b'NOOP "unclosed\r\n')[-1].startswith(b"NO")
        assert raw.send(b"NOOP " + b"x" * 9000 + b"\r\n")[-1].startswith(b"NO")
        assert raw.send(b"NOOP \"\xff\"\r\n")[-1].startswith(b"NO")
        assert raw.send(b"NOOP {2+}\r\n\xff\xfe\r\n")[-1].startswith(b"NO")  # a literal that is no UTF-8 (fuzz)
        assert raw.send(b"CAPABILITY\r\n")[-1].startswith(b"OK")
    finally:
        raw.close()
    # Before login only a SASL-sized literal is read: a larger one ends the connection unread.
    raw = Raw(server.ports["managesieve"])
    try:
        raw.upto_status()
        raw.starttls()
        assert raw.send(b"AUTHENTICATE \"PLAIN\" {100000+}\r\n")[-1].startswith(b"BYE")
    finally:
        raw.close()


def test_a_wrong_password_is_refused_and_counts_in_the_lockout(server, user):
    raw = Raw(server.ports["managesieve"])
    try:
        raw.upto_status()
        raw.starttls()
        reply = raw.send(b'AUTHENTICATE "PLAIN" "' + _plain(user, "wrong") + b'"\r\n')
        assert reply[-1].startswith(b"NO")
        assert raw.send(b'AUTHENTICATE "PLAIN" "*"\r\n')[-1].startswith(b"NO")
    finally:
        raw.close()
    assert ssl  # the module is used by client_tls()
