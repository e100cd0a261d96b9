"""One SASL exchange (codec.sasl) for SMTP, POP3 and IMAP, over real sockets: the same mechanisms
everywhere, each protocol's framing and error replies, and the session going on after bad input."""

from __future__ import annotations

import base64
import imaplib
import smtplib
import socket

import pytest

from conftest import PASSWORD, client_tls, start_server

TIMEOUT = 30


class Lines:
    """A raw line client (plaintext; the server allows AUTH on loopback for these tests)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data + b"\r\n")

    def line(self) -> bytes:
        return self.file.readline().rstrip(b"\r\n")

    def ask(self, data: bytes) -> bytes:
        self.send(data)
        return self.line()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def plain(user: str, password: str = PASSWORD) -> bytes:
    return base64.b64encode(f"\0{user}\0{password}".encode())


def b64(text: str) -> bytes:
    return base64.b64encode(text.encode())


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory):
    """AUTH without TLS from loopback, so raw clients can send what smtplib and poplib never would."""
    srv = start_server(tmp_path_factory.mktemp("plain"), 'plaintext_networks = ["127.0.0.0/8"]\n')
    yield srv
    srv.stop()


def submission(server) -> smtplib.SMTP:
    s = smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=TIMEOUT)
    s.starttls(context=client_tls())
    s.ehlo()
    return s


def log_in(c: Lines, mechanism: str, user: str, challenge: bytes, ok: bytes) -> None:
    """A good exchange, without initial response for LOGIN: ``challenge`` is the framing (``334 `` / ``+ ``)."""
    if mechanism == "PLAIN":
        assert c.ask(b"AUTH PLAIN " + plain(user)).startswith(ok)
        return
    assert c.ask(b"AUTH LOGIN") == challenge + b64("Username:")
    assert c.ask(b64(user)) == challenge + b64("Password:")
    assert c.ask(b64(PASSWORD)).startswith(ok)


# --- every protocol ----------------------------------------------------------------
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_smtp_auth_overlong_sasl_line_gets_500_556_and_session_goes_on(plain_server, mechanism):
    user = plain_server.add_user(f"long-smtp-{mechanism.lower()}")
    c = Lines(plain_server.ports["submission"])
    try:
        assert c.line().startswith(b"220")
        c.send(b"EHLO x")
        while not c.line().startswith(b"250 "):
            pass
        assert c.ask(b"AUTH " + mechanism.encode()).startswith(b"334")
        assert c.ask(b"A" * 10_000).startswith(b"500 5.5.6")
        log_in(c, mechanism, user, b"334 ", b"235")
        assert c.ask(b"QUIT").startswith(b"221")
    finally:
        c.close()


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_pop3_auth_overlong_sasl_line_gets_err_and_session_goes_on(plain_server, mechanism):
    user = plain_server.add_user(f"long-pop-{mechanism.lower()}")
    c = Lines(plain_server.ports["pop3"])
    try:
        assert c.line().startswith(b"+OK")
        assert c.ask(b"AUTH " + mechanism.encode()).startswith(b"+ ")
        assert c.ask(b"A" * 10_000).startswith(b"-ERR")
        log_in(c, mechanism, user, b"+ ", b"+OK")
        assert c.ask(b"QUIT").startswith(b"+OK")
    finally:
        c.close()


def test_imap_offers_and_runs_authenticate_login(server, user):
    imap = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls(), timeout=TIMEOUT)
    try:
        assert "AUTH=PLAIN" in imap.capabilities and "AUTH=LOGIN" in imap.capabilities
        challenges: list[bytes] = []
        answers = iter([user, PASSWORD])

        def respond(challenge: bytes) -> bytes:
            challenges.append(challenge)
            return next(answers).encode()

        assert imap.authenticate("LOGIN", respond)[0] == "OK"
        assert challenges == [b"Username:", b"Password:"]
        assert imap.select("INBOX")[0] == "OK"
    finally:
        imap.logout()


def test_imap_authenticate_cancel_overlong_and_bad_lines_get_bad_and_session_goes_on(plain_server):
    user = plain_server.add_user("long-imap")
    c = Lines(plain_server.ports["imap"])
    try:
        assert c.line().startswith(b"* OK")
        assert c.ask(b"a AUTHENTICATE LOGIN") == b"+ " + b64("Username:")
        assert c.ask(b"*") == b"a BAD Authentication cancelled"
        for n, bad in enumerate([b"A" * 10_000, b"A" * 100_000, b"!!!", b"\xff\xfe"]):
            assert c.ask(b"b%d AUTHENTICATE PLAIN" % n) == b"+ "
            assert c.ask(bad).startswith(b"b%d BAD" % n)
        assert c.ask(b"c AUTHENTICATE LOGIN " + b64(user)) == b"+ " + b64("Password:")
        assert c.ask(b64(PASSWORD)).startswith(b"c OK")
        assert c.ask(b"d LOGOUT").startswith(b"* BYE")
    finally:
        c.close()


def test_malformed_sasl_exchanges_count_toward_the_lockout_and_cancels_do_not(tmp_path):
    srv = start_server(tmp_path, 'fail_threshold = 3\nlockout = "1h"\n')
    try:
        srv.add_user("garbled")
        with submission(srv) as s:
            for _ in range(5):
                assert s.docmd("AUTH", "PLAIN")[0] == 334
                assert s.docmd("*")[0] == 501  # cancelled: nothing was tried
            for _ in range(3):
                code, text = s.docmd("AUTH", "PLAIN !!!not-base64!!!")
                assert (code, text[:5]) == (501, b"5.5.2")
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=TIMEOUT)
        assert refused.value.smtp_code == 421
    finally:
        srv.stop()
