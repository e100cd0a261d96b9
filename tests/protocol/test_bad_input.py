"""Hostile and broken input over real sockets: the server answers, limits, or closes, and never falls over.

Raw sockets wherever smtplib/poplib would refuse to send the bad input. Each test ends by proving the server
still does its job for a well-behaved client.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import poplib
import random
import re
import resource
import select
import smtplib
import socket
import string
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import PASSWORD, ServerThread, client_tls, start_server

TIMEOUT = 10.0
SMTP_REPLY_LINE = re.compile(rb"^[2-5][0-9][0-9]([ -]|$)")
POP3_STATUS = re.compile(rb"^(\+OK|-ERR|\+)( |$)")  # "+ " is a SASL challenge
MAX_BAD = 20  # limits.max_bad_commands default


# --- a raw client ---------------------------------------------------------------------------------
class Raw:
    """A line-buffered TCP client that sends anything and never interprets more than it must."""

    def __init__(self, port: int, timeout: float = TIMEOUT) -> None:
        self.sock: socket.socket = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes | None:
        """The next line without CRLF; None at EOF (or reset) with nothing buffered."""
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                rest, self.buf = self.buf, b""
                return rest or None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r")

    def reply(self) -> tuple[int, list[bytes]] | None:
        """One complete (possibly multi-line) SMTP reply; None at EOF before it starts."""
        lines: list[bytes] = []
        while True:
            line = self.line()
            if line is None:
                assert not lines, f"connection closed inside a multi-line reply: {lines!r}"
                return None
            assert SMTP_REPLY_LINE.match(line), f"not an SMTP reply line: {line[:200]!r}"
            assert not lines or line[:3] == lines[0][:3], f"reply code changed mid-reply: {lines + [line]!r}"
            lines.append(line)
            if line[3:4] != b"-":
                return int(line[:3]), lines

    def cmd(self, data: bytes) -> tuple[int, list[bytes]]:
        self.send(data + b"\r\n")
        got = self.reply()
        assert got is not None, f"connection closed without a reply to {data[:80]!r}"
        return got

    def pop(self, data: bytes) -> bytes:
        self.send(data + b"\r\n")
        line = self.line()
        assert line is not None, f"connection closed without a reply to {data[:80]!r}"
        assert POP3_STATUS.match(line), f"not a POP3 status line: {line[:200]!r}"
        return line

    def multiline(self) -> list[bytes]:
        lines = []
        while (line := self.line()) != b".":
            assert line is not None, "connection closed inside a multi-line response"
            lines.append(line)
        return lines

    def at_eof(self, timeout: float = TIMEOUT) -> bool:
        """True when the server closes the connection (within timeout) without sending anything more."""
        self.sock.settimeout(timeout)
        try:
            return self.line() is None
        finally:
            self.sock.settimeout(TIMEOUT)

    def pending(self, timeout: float) -> bool:
        if self.buf:
            return True
        readable, _, _ = select.select([self.sock], [], [], timeout)
        return bool(readable)

    def starttls(self) -> None:
        assert not self.buf, "plaintext pipelined behind the TLS go-ahead"
        self.sock = client_tls().wrap_socket(self.sock)


@contextlib.contextmanager
def raw(port: int) -> Iterator[Raw]:
    conn = Raw(port)
    try:
        yield conn
    finally:
        conn.close()


def smtp_session(port: int, helo: bytes = b"EHLO client.test") -> Raw:
    conn = Raw(port)
    greeting = conn.reply()
    assert greeting is not None and greeting[0] == 220, greeting
    if helo:
        assert conn.cmd(helo)[0] == 250
    return conn


def pop3_session(port: int, tls: bool = False) -> Raw:
    conn = Raw(port)
    greeting = conn.line()
    assert greeting is not None and greeting.startswith(b"+OK"), greeting
    if tls:
        assert conn.pop(b"STLS").startswith(b"+OK")
        conn.starttls()
    return conn


def send_mail(port: int, rcpt: str, marker: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=TIMEOUT) as s:
        body = f"Subject: {marker}\r\nMessage-ID: <{marker}@client.test>\r\n\r\nmarker {marker}\r\n"
        assert s.sendmail("someone@outside.test", [rcpt], body.encode()) == {}


def mailbox(port: int, address: str) -> list[bytes]:
    pop = poplib.POP3("127.0.0.1", port, timeout=TIMEOUT)
    try:
        pop.stls(client_tls())
        pop.user(address)
        pop.pass_(PASSWORD)
        count, _ = pop.stat()
        messages = [b"\r\n".join(pop.retr(i)[1]) for i in range(1, count + 1)]
        pop.quit()
    finally:
        pop.close()
    return messages


def assert_still_serves(srv: ServerThread, address: str) -> None:
    """A normal client sends a message and reads it back over POP3."""
    marker = f"alive-{uuid.uuid4().hex}"
    send_mail(srv.ports["smtp"], address, marker)
    found = [m for m in mailbox(srv.ports["pop3"], address) if f"marker {marker}".encode() in m]
    assert len(found) == 1


@pytest.fixture
def dedicated(tmp_path: Path) -> Iterator[list[ServerThread]]:
    """Servers with their own limits, started by the test through ``start(extra)``; stopped at the end."""
    servers: list[ServerThread] = []
    yield servers
    for srv in servers:
        srv.stop()


def start(servers: list[ServerThread], tmp: Path, extra: str) -> ServerThread:
    srv = start_server(tmp / f"node{len(servers)}", extra)
    servers.append(srv)
    return srv


@pytest.fixture
def no_crashes(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail the test if any session crashed (the listener logs it at ERROR) or a task error went unlogged."""
    caplog.set_level(logging.WARNING)
    yield
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not bad, "\n".join(f"{r.name}: {r.getMessage()}\n{r.exc_text or ''}" for r in bad)


# --- over-long and garbage SMTP commands ------------------------------------------------------------
def test_smtp_100kb_command_line_is_refused_500_5_5_6_and_session_continues(server, user, no_crashes):
    with contextlib.closing(smtp_session(server.ports["smtp"])) as c:
        code, lines = c.cmd(b"NOOP " + b"a" * 100_000)
        assert code == 500 and lines[-1].startswith(b"500 5.5.6"), lines
        code, lines = c.cmd(b"MAIL FROM:<" + b"b" * 100_000 + b"@outside.test>")
        assert lines[-1].startswith(b"500 5.5.6"), lines
        # The over-long line arrives in pieces, the CRLF much later: still one reply, then business as usual.
        c.send(b"EHLO " + b"c" * 50_000)
        time.sleep(0.05)
        c.send(b"c" * 50_000)
        code, lines = c.cmd(b"")
        assert lines[-1].startswith(b"500 5.5.6"), lines
        assert c.cmd(b"NOOP") == (250, [b"250 2.0.0 Ok"])
        assert c.cmd(b"NOOP " + b"x" * 3000)[0] == 250  # long but within limits.max_command_line
        assert c.cmd(b"MAIL FROM:<x@outside.test>")[0] == 250
        assert c.cmd(f"RCPT TO:<{user}>".encode())[0] == 250
        assert c.cmd(b"DATA")[0] == 354
        assert c.cmd(b"Subject: after long lines\r\n\r\nstill here\r\n.")[0] == 250
        assert c.cmd(b"QUIT")[0] == 221


GARBAGE = [
    b"\x00",
    b"\x00\x00\x00\x00",
    b"NOOP\x00",
    b"\x00NOOP",
    b"EHLO \x00evil",
    b"\xff\xfe\xfd\xfc",
    b"EHLO \xff\xfe",
    b"MAIL FROM:<\xc3\x28@outside.test>",  # invalid UTF-8 sequence
    b"MAIL FROM:<a\x00b@outside.test>",
    b"RCPT TO:<\xed\xa0\x80@example.test>",  # UTF-8-encoded surrogate
    b"VRFY \xc0\xaf",  # overlong encoding of "/"
    b"\x1b[31mRED\x1b[0m",
    b"",
    b"        ",
    b"\t\t",
    b"\r\r\r",
    b"HELO \x7f\x7f",
    b"\x80" * 300,
]


def test_smtp_garbage_bytes_get_a_5xx_reply_each_and_session_continues(server, user, no_crashes):
    with contextlib.closing(smtp_session(server.ports["smtp"])) as c:
        for junk in GARBAGE[:MAX_BAD - 2]:
            code, lines = c.cmd(junk)
            assert 500 <= code <= 504, (junk, lines)
        assert c.cmd(b"NOOP")[0] == 250
        assert c.cmd(b"RSET")[0] == 250
        assert c.cmd(b"QUIT")[0] == 221
    with contextlib.closing(smtp_session(server.ports["smtp"])) as c:
        for junk in GARBAGE[MAX_BAD - 2:]:
            assert 500 <= c.cmd(junk)[0] <= 504, junk
        assert c.cmd(b"NOOP")[0] == 250
    assert_still_serves(server, user)


def test_smtp_bare_lf_command_lines_are_answered_like_crlf_ones(server, user, no_crashes):
    with contextlib.closing(smtp_session(server.ports["smtp"], helo=b"")) as c:
        marker = f"barelf-{uuid.uuid4().hex}"
        c.send(b"EHLO lf.test\n")
        assert c.reply()[0] == 250
        c.send(b"NOOP\nNOOP\nRSET\n")  # pipelined, LF-only
        assert [c.reply()[0] for _ in range(3)] == [250, 250, 250]
        c.send(b"MAIL FROM:<lf@outside.test>\n")
        assert c.reply()[0] == 250
        c.send(f"RCPT TO:<{user}>\n".encode())
        assert c.reply()[0] == 250
        c.send(b"DATA\n")
        assert c.reply()[0] == 354
        c.send(f"Subject: {marker}\r\n\r\nmarker {marker}\r\n.\r\n".encode())
        assert c.reply()[0] == 250
        c.send(b"QUIT\n")
        assert c.reply()[0] == 221
    assert sum(f"marker {marker}".encode() in m for m in mailbox(server.ports["pop3"], user)) == 1


@pytest.mark.parametrize("fake_end", [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r\n"])
def test_smtp_bare_lf_dot_inside_data_does_not_end_the_message(server, user, fake_end, no_crashes):
    """SMTP smuggling (CVE-2023-51764): only CRLF "." CRLF ends DATA; a smuggled command stays body text."""
    marker = f"smuggle-{uuid.uuid4().hex}"
    with contextlib.closing(smtp_session(server.ports["smtp"])) as c:
        assert c.cmd(b"MAIL FROM:<a@outside.test>")[0] == 250
        assert c.cmd(f"RCPT TO:<{user}>".encode())[0] == 250
        assert c.cmd(b"DATA")[0] == 354
        c.send(f"Subject: {marker}\r\n\r\nmarker {marker}".encode() + fake_end
               + f"MAIL FROM:<evil@outside.test>\r\nRCPT TO:<{user}>\r\nDATA\r\nSubject: smuggled\r\n\r\n".encode()
               + b"smuggled body\r\n.\r\n")
        code, lines = c.reply()
        assert code == 250, lines
        assert not c.pending(0.2), "more than one reply: the smuggled commands were executed"
        assert c.cmd(b"NOOP")[0] == 250
    messages = [m for m in mailbox(server.ports["pop3"], user) if f"marker {marker}".encode() in m]
    assert len(messages) == 1
    assert b"MAIL FROM:<evil@outside.test>" in messages[0]


def test_smtp_too_many_bad_commands_get_421_4_7_0_and_close(server, user, no_crashes):
    with contextlib.closing(smtp_session(server.ports["smtp"])) as c:
        errors = 0
        while True:
            code, lines = c.cmd(b"XYZZY plugh")
            assert code == 500, lines
            errors += 1
            assert errors <= MAX_BAD, "never closed"
            if errors == MAX_BAD:
                break
        closing = c.reply()
        assert closing is not None and closing[1][-1].startswith(b"421 4.7.0"), closing
        assert c.at_eof()
    assert_still_serves(server, user)


def test_pop3_too_many_bad_commands_get_err_and_close(server, no_crashes):
    with contextlib.closing(pop3_session(server.ports["pop3"])) as c:
        for _ in range(MAX_BAD):
            assert c.pop(b"FROB").startswith(b"-ERR")
        last = c.line()
        assert last is not None and last.startswith(b"-ERR") and b"Too many" in last, last
        assert c.at_eof()


# --- seeded random input --------------------------------------------------------------------------
PRINTABLE = string.printable.replace("\r", "").replace("\n", "")
SMTP_VERBS = ["EHLO", "HELO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "VRFY", "HELP", "QUIT",
              "STARTTLS", "AUTH", "EXPN", "TURN", "ETRN", "ATRN", "XCLIENT", "MAIL FROM:", "RCPT TO:", "ehlo",
              "MaIl FrOm:", "AUTH PLAIN", "AUTH LOGIN"]
POP3_VERBS = ["USER", "PASS", "APOP", "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "QUIT", "TOP", "UIDL",
              "CAPA", "STLS", "AUTH", "UTF8", "LANG", "AUTH PLAIN", "AUTH LOGIN", "user", "capa"]


def junk(rng: random.Random, n: int) -> bytes:
    if rng.random() < 0.5:
        return "".join(rng.choice(PRINTABLE) for _ in range(rng.randint(0, n))).encode()
    return bytes(rng.choice([b for b in range(256) if b != 0x0A]) for _ in range(rng.randint(0, n)))


def random_lines(rng: random.Random, verbs: list[str], valid: list[bytes], count: int = 500) -> Iterator[bytes]:
    """Junk lines, known verbs with junk arguments, and some valid commands so that state moves on."""
    for _ in range(count):
        roll = rng.random()
        if roll < 0.25:
            yield junk(rng, 200)
        elif roll < 0.35:
            yield junk(rng, 6000)  # sometimes beyond the line limit
        elif roll < 0.85:
            yield rng.choice(verbs).encode() + rng.choice([b" ", b"", b"  "]) + junk(rng, 80)
        else:
            yield rng.choice(valid)


class Fuzzer:
    """Sends lines one at a time, follows the protocol just enough, reconnects when the server closes."""

    def __init__(self, port: int, pop3: bool) -> None:
        self.port = port
        self.pop3 = pop3
        self.conn: Raw | None = None
        self.stats = {"lines": 0, "replies": 0, "ok": 0, "errors": 0, "closed_by_server": 0, "reconnects": 0}
        self.errors_here = 0

    def connect(self) -> Raw:
        if self.conn is None:
            self.conn = Raw(self.port)
            self.errors_here = 0
            if self.pop3:
                greeting = self.conn.line()
                assert greeting is not None and greeting.startswith(b"+OK"), greeting
            else:
                greeting = self.conn.reply()
                assert greeting is not None and greeting[0] == 220, greeting
            self.stats["reconnects"] += 1
        return self.conn

    def drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close(self) -> None:
        self.drop()

    def server_closes(self, conn: Raw) -> None:
        assert conn.at_eof(), "server announced the close but kept the connection open"
        self.stats["closed_by_server"] += 1
        self.drop()

    # -- SMTP
    def smtp(self, line: bytes, payload: bytes = b"", first_try: bool = True) -> None:
        conn = self.connect()
        fresh = self.errors_here == 0 and not first_try
        conn.send(line + b"\r\n" + payload)
        got = conn.reply()
        assert got is not None, f"SMTP server closed without a reply to {line[:100]!r}"
        code, lines = got
        if code == 421:  # the close announced after the previous error, late: this line was never read
            assert not fresh, f"421 on a fresh connection: {lines!r}"
            self.server_closes(conn)
            self.smtp(line, payload, first_try=False)
            return
        self.stats["replies"] += 1
        if code == 354:
            got = conn.cmd(b"Subject: fuzz\r\n\r\nfuzz body\r\n.")
            code, lines = got
        elif code == 334:
            code, lines = conn.cmd(b"*")
        elif code == 220:  # STARTTLS go-ahead: walk away mid-handshake
            self.drop()
            return
        elif code == 221:
            self.server_closes(conn)
            return
        if code >= 400:
            self.stats["errors"] += 1
            self.errors_here += 1
            if self.errors_here >= MAX_BAD and conn.pending(1.0):
                closing = conn.reply()
                assert closing is not None and closing[1][-1].startswith(b"421 4.7.0"), closing
                self.server_closes(conn)
        else:
            self.stats["ok"] += 1

    # -- POP3
    def pop(self, line: bytes, first_try: bool = True) -> None:
        conn = self.connect()
        fresh = self.errors_here == 0 and not first_try
        conn.send(line + b"\r\n")
        status = conn.line()
        assert status is not None, f"POP3 server closed without a reply to {line[:100]!r}"
        assert POP3_STATUS.match(status), f"bad status {status!r} for {line[:100]!r}"
        if b"Too many errors" in status and self.errors_here >= MAX_BAD:  # late close of the previous error
            assert not fresh
            self.server_closes(conn)
            self.pop(line, first_try=False)
            return
        self.stats["replies"] += 1
        verb = line.split(b" ", 1)[0].upper()
        if status.startswith(b"+ "):
            status = conn.pop(b"*")
        if status.startswith(b"+OK"):
            self.stats["ok"] += 1
            if verb in (b"CAPA", b"AUTH"):
                conn.multiline()
            elif verb == b"STLS":
                self.drop()
            elif verb == b"QUIT":
                self.server_closes(conn)
        else:
            self.stats["errors"] += 1
            self.errors_here += 1
            if b"Too many errors" in status:
                self.server_closes(conn)
            elif self.errors_here >= MAX_BAD and conn.pending(1.0):
                closing = conn.line()
                assert closing is not None and b"Too many errors" in closing, closing
                self.server_closes(conn)


def test_smtp_seeded_random_lines_never_crash_the_server(server, user, no_crashes):
    rng = random.Random(1234)
    valid = [b"EHLO fuzz.test", b"HELO fuzz.test", b"MAIL FROM:<fuzz@outside.test>", f"RCPT TO:<{user}>".encode(),
             b"DATA", b"RSET", b"NOOP", b"MAIL FROM:<> SIZE=1000 BODY=8BITMIME", b"BDAT 10 LAST", b"BDAT 0"]
    fuzz = Fuzzer(server.ports["smtp"], pop3=False)
    try:
        for line in random_lines(rng, SMTP_VERBS, valid):
            fuzz.stats["lines"] += 1
            payload = b""
            if (m := re.fullmatch(rb"BDAT +([0-9]{1,18})( +LAST)? *", line, re.I)) is not None:
                if int(m[1]) > 10_000:
                    line = b"BDAT 100" + (m[2] or b"")
                payload = bytes(rng.randrange(256) for _ in range(int(re.split(rb" +", line)[1])))
            fuzz.smtp(line, payload)
    finally:
        fuzz.close()
    print(f"\nsmtp fuzz: {fuzz.stats}")
    assert fuzz.stats["replies"] == 500  # one answer to every line
    assert_still_serves(server, user)


def test_pop3_seeded_random_lines_never_crash_the_server(server, user, no_crashes):
    rng = random.Random(1234)
    valid = [b"CAPA", b"NOOP", b"STAT", b"QUIT", b"AUTH", b"USER someone", b"RSET"]
    fuzz = Fuzzer(server.ports["pop3"], pop3=True)
    try:
        for line in random_lines(rng, POP3_VERBS, valid):
            fuzz.stats["lines"] += 1
            fuzz.pop(line)
    finally:
        fuzz.close()
    print(f"\npop3 fuzz: {fuzz.stats}")
    assert fuzz.stats["replies"] == 500  # one answer to every line
    assert_still_serves(server, user)


# --- POP3 over-long lines and bad SASL --------------------------------------------------------------
def test_pop3_line_over_4096_bytes_gets_err_and_session_continues(server, no_crashes):
    with contextlib.closing(pop3_session(server.ports["pop3"])) as c:
        assert c.pop(b"CAPA " + b"x" * 5000).startswith(b"-ERR")
        assert c.pop(b"USER " + b"y" * 100_000).startswith(b"-ERR")
        assert c.pop(b"CAPA").startswith(b"+OK")
        assert b"STLS" in c.multiline()
        assert c.pop(b"QUIT").startswith(b"+OK")


@pytest.mark.parametrize("bad", [b"AUTH PLAIN !!!not-base64!!!", b"AUTH PLAIN dGVzdA=", b"AUTH PLAIN \xff\xfe",
                                 b"AUTH PLAIN " + base64.b64encode(b"no separators")])
def test_pop3_auth_plain_with_bad_base64_gets_err(server, user, bad, no_crashes):
    with contextlib.closing(pop3_session(server.ports["pop3"], tls=True)) as c:
        assert c.pop(bad).startswith(b"-ERR")
        assert c.pop(b"AUTH PLAIN").startswith(b"+ ")  # the response on its own line
        assert c.pop(b"%%%%").startswith(b"-ERR")
        good = base64.b64encode(f"\0{user}\0{PASSWORD}".encode())
        assert c.pop(b"AUTH PLAIN " + good).startswith(b"+OK"), "session unusable after bad SASL input"
        assert c.pop(b"QUIT").startswith(b"+OK")


def test_smtp_auth_plain_with_bad_base64_gets_501(server, user, no_crashes):
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=TIMEOUT) as s:
        s.starttls(context=client_tls())
        s.ehlo()
        code, text = s.docmd("AUTH", "PLAIN !!!not-base64!!!")
        assert (code, text[:5]) == (501, b"5.5.2")
        code, _ = s.docmd("AUTH", "PLAIN " + base64.b64encode(f"\0{user}\0{PASSWORD}".encode()).decode())
        assert code == 235


# --- connection limits ------------------------------------------------------------------------------
def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} file descriptors, hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def test_1000_idle_connections_do_not_stop_a_normal_client(tmp_path, dedicated, no_crashes):
    raise_fd_limit(4096)  # 1,000 client sockets and 1,000 server sockets in this process
    srv = start(dedicated, tmp_path, "[limits]\nmax_connections_per_ip = 2000\n")
    address = srv.add_user("busy")
    idle: list[socket.socket] = []
    try:
        for _ in range(1000):
            idle.append(socket.create_connection(("127.0.0.1", srv.ports["smtp"]), timeout=TIMEOUT))
        for sock in idle:  # every one gets a real greeting, none is refused
            greeting = sock.recv(4096)
            assert greeting.startswith(b"220 "), greeting
        assert_still_serves(srv, address)  # every socket call in it is bounded by TIMEOUT
        for sock in idle[::100]:  # the idle ones are still alive and served
            sock.sendall(b"NOOP\r\n")
            assert sock.recv(4096).startswith(b"250 ")
    finally:
        for sock in idle:
            sock.close()


def test_plaintext_and_garbage_on_implicit_tls_ports_end_only_those_clients(server, user, no_crashes):
    """A failed TLS handshake (plaintext command, random bytes, a client that never speaks) on SMTPS,
    POP3S and IMAPS closes that connection; every other session goes on."""
    with raw(server.ports["pop3"]) as bystander:
        assert bystander.line().startswith(b"+OK")
        silent = [socket.create_connection(("127.0.0.1", server.ports[name]), timeout=TIMEOUT)
                  for name in ("smtps", "pop3s", "imaps")]
        try:
            for name in ("smtps", "pop3s", "imaps"):
                for junk_bytes in (b"EHLO plain.test\r\n", bytes(random.Random(7).randrange(256) for _ in range(600))):
                    with socket.create_connection(("127.0.0.1", server.ports[name]), timeout=TIMEOUT) as bad:
                        bad.sendall(junk_bytes)
                        got = b""
                        while chunk := bad.recv(4096):  # at most a TLS alert record, then the close
                            got += chunk
                        assert got[:1] in (b"", b"\x15"), (name, got[:40])
            assert bystander.pop(b"CAPA").startswith(b"+OK")
            assert_still_serves(server, user)
        finally:
            for sock in silent:
                sock.close()


def test_a_burst_of_simultaneous_connections_all_get_greetings(tmp_path, dedicated, no_crashes):
    """300 clients connect at once (the kernel queues them); every one is accepted and greeted."""
    raise_fd_limit(2048)
    srv = start(dedicated, tmp_path, "[limits]\nmax_connections_per_ip = 1000\n")
    socks: list[socket.socket] = []
    try:
        for _ in range(300):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", srv.ports["imap"]))
            socks.append(sock)
        for sock in socks:
            sock.setblocking(True)
            sock.settimeout(TIMEOUT)
            assert sock.recv(4096).startswith(b"* OK "), "no greeting"
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.parametrize("limit", [5, 200])
def test_connection_beyond_per_ip_limit_gets_421(tmp_path, dedicated, limit, no_crashes):
    extra = f"[limits]\nmax_connections_per_ip = {limit}\n" if limit != 200 else ""  # 200 is the default
    srv = start(dedicated, tmp_path, extra)
    address = srv.add_user("limited")
    held: list[Raw] = []
    try:
        for _ in range(limit):
            held.append(Raw(srv.ports["smtp"]))
            assert held[-1].reply()[0] == 220
        with raw(srv.ports["smtp"]) as extra_smtp:
            refused = extra_smtp.reply()
            assert refused is not None and refused[1][-1].startswith(b"421 4.7.0"), refused
            assert extra_smtp.at_eof()
        with raw(srv.ports["pop3"]) as extra_pop3:  # the limit counts every protocol
            refused_line = extra_pop3.line()
            assert refused_line is not None and refused_line.startswith(b"-ERR"), refused_line
            assert extra_pop3.at_eof()
        assert held[0].cmd(b"NOOP")[0] == 250  # the admitted ones are unaffected
        with contextlib.closing(held.pop()) as leaving:
            assert leaving.cmd(b"QUIT")[0] == 221
        deadline = time.monotonic() + 5
        while True:  # the freed slot is released once the server has seen the close
            with raw(srv.ports["smtp"]) as again:
                got = again.reply()
                assert got is not None
                if got[0] == 220:
                    break
                assert time.monotonic() < deadline, "slot never released"
            time.sleep(0.05)
    finally:
        for conn in held:
            conn.close()
    time.sleep(0.2)
    assert_still_serves(srv, address)


# --- message size -------------------------------------------------------------------------------------
MAX_SIZE = 100 * 1024  # "100KB", binary units


@pytest.fixture
def small(tmp_path: Path, dedicated: list[ServerThread]) -> tuple[ServerThread, str]:
    srv = start(dedicated, tmp_path, '[limits]\nmax_message_size = "100KB"\n')
    return srv, srv.add_user("small")


def body_of(size: int, marker: str) -> bytes:
    head = f"Subject: {marker}\r\n\r\nmarker {marker}\r\n".encode()
    line = b"y" * 98 + b"\r\n"
    return head + line * ((size - len(head)) // len(line) + 1)


def begin(conn: Raw, rcpt: str, mail: bytes = b"MAIL FROM:<big@outside.test>") -> None:
    assert conn.cmd(mail)[0] == 250
    assert conn.cmd(f"RCPT TO:<{rcpt}>".encode())[0] == 250


def test_size_declared_at_mail_over_limit_gets_552_5_3_4(small, no_crashes):
    srv, rcpt = small
    with contextlib.closing(smtp_session(srv.ports["smtp"], helo=b"")) as c:
        code, lines = c.cmd(b"EHLO client.test")
        assert f"250-SIZE {MAX_SIZE}".encode() in lines
        code, lines = c.cmd(f"MAIL FROM:<big@outside.test> SIZE={MAX_SIZE + 1}".encode())
        assert code == 552 and lines[-1].startswith(b"552 5.3.4"), lines
        code, lines = c.cmd(b"MAIL FROM:<big@outside.test> SIZE=999999999999")
        assert code == 552 and lines[-1].startswith(b"552 5.3.4"), lines
        assert c.cmd(f"MAIL FROM:<big@outside.test> SIZE={MAX_SIZE // 2}".encode())[0] == 250


@pytest.mark.parametrize("size", [MAX_SIZE + 2048, 3 * MAX_SIZE // 2, 3 * MAX_SIZE])
def test_data_over_limit_without_size_gets_552_5_3_4(small, size, no_crashes):
    srv, rcpt = small
    marker = f"bigdata-{uuid.uuid4().hex}"
    with contextlib.closing(smtp_session(srv.ports["smtp"])) as c:
        begin(c, rcpt)
        assert c.cmd(b"DATA")[0] == 354
        code, lines = c.cmd(body_of(size, marker) + b".")
        assert code == 552 and lines[-1].startswith(b"552 5.3.4"), lines
        assert c.cmd(b"NOOP")[0] == 250  # the session goes on
    assert not [m for m in mailbox(srv.ports["pop3"], rcpt) if marker.encode() in m]
    assert_still_serves(srv, rcpt)


@pytest.mark.parametrize("size", [MAX_SIZE + 2048, 3 * MAX_SIZE // 2, 3 * MAX_SIZE])
def test_bdat_over_limit_gets_552_5_3_4(small, size, no_crashes):
    srv, rcpt = small
    marker = f"bigbdat-{uuid.uuid4().hex}"
    data = body_of(size, marker)
    with contextlib.closing(smtp_session(srv.ports["smtp"])) as c:
        begin(c, rcpt)
        c.send(f"BDAT {len(data)} LAST\r\n".encode() + data)
        code, lines = c.reply()
        assert code == 552 and lines[-1].startswith(b"552 5.3.4"), lines
        assert c.cmd(b"NOOP")[0] == 250
    assert not [m for m in mailbox(srv.ports["pop3"], rcpt) if marker.encode() in m], \
        f"a {len(data)}-octet message was delivered over a {MAX_SIZE}-octet limit"


def test_bdat_chunks_adding_up_over_limit_get_552_5_3_4(small, no_crashes):
    srv, rcpt = small
    marker = f"bigchunks-{uuid.uuid4().hex}"
    data = body_of(4 * MAX_SIZE, marker)
    chunk = len(data) // 4 + 1
    with contextlib.closing(smtp_session(srv.ports["smtp"])) as c:
        begin(c, rcpt)
        codes = []
        for i in range(0, len(data), chunk):
            part = data[i:i + chunk]
            last = b" LAST" if i + chunk >= len(data) else b""
            c.send(f"BDAT {len(part)}".encode() + last + b"\r\n" + part)
            codes.append(c.reply())
        assert codes[-1][0] == 552 and codes[-1][1][-1].startswith(b"552 5.3.4"), codes
        assert c.cmd(b"NOOP")[0] == 250
    assert not [m for m in mailbox(srv.ports["pop3"], rcpt) if marker.encode() in m]


@pytest.mark.parametrize("how", ["DATA", "BDAT"])
def test_message_under_limit_is_accepted(small, how, no_crashes):
    srv, rcpt = small
    marker = f"fits-{uuid.uuid4().hex}"
    data = body_of(MAX_SIZE - 8192, marker)  # room for the Received header the server adds
    with contextlib.closing(smtp_session(srv.ports["smtp"])) as c:
        begin(c, rcpt)
        if how == "DATA":
            assert c.cmd(b"DATA")[0] == 354
            assert c.cmd(data + b".")[0] == 250
        else:
            c.send(f"BDAT {len(data)} LAST\r\n".encode() + data)
            assert c.reply()[0] == 250
    assert len([m for m in mailbox(srv.ports["pop3"], rcpt) if marker.encode() in m]) == 1



@pytest.mark.parametrize("how", ["DATA", "BDAT"])
def test_message_line_over_max_header_line_is_refused_550_5_5_2(server, user, how, no_crashes):
    """limits.max_header_line (64 KiB by default) is "the longest line inside a message before it is refused",
    whichever command carried the message."""
    data = b"Subject: one very long line\r\n\r\n" + b"w" * 100_000 + b"\r\n"
    with contextlib.closing(smtp_session(server.ports["smtp"])) as c:
        begin(c, user)
        if how == "DATA":
            assert c.cmd(b"DATA")[0] == 354
            code, lines = c.cmd(data + b".")
        else:
            c.send(f"BDAT {len(data)} LAST\r\n".encode() + data)
            code, lines = c.reply()
        assert code == 550 and lines[-1].startswith(b"550 5.5.2"), lines
        assert c.cmd(b"NOOP")[0] == 250
