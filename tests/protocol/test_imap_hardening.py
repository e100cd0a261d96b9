"""IMAP front-end under attack, over real sockets: hostile LIST patterns, literals before login,
broken COMPRESS streams, commands in the wrong state, RENAME past the name limits."""

from __future__ import annotations

import logging
import socket
import time
import zlib

import pytest

from conftest import PASSWORD, client_tls, start_server
from helpers import wait_for
from imap_client import ImapLines


def greeting_delay(port: int) -> float:
    """Seconds from connecting to the IMAP greeting."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        line = sock.makefile("rb").readline()
    assert line.startswith(b"* OK"), line
    return time.monotonic() - started


@pytest.fixture
def client(server, user):
    conn = ImapLines(server.ports["imaps"], user)
    yield conn
    conn.close()


@pytest.mark.parametrize(("boxes", "pattern"), [
    (["a" * 500], "*a*a*a*b"),  # one long name, a few wildcards
    ([f"box{i}" for i in range(11)], "*%" * 20 + "x"),  # short names, many wildcards
])
def test_hostile_list_pattern_does_not_delay_another_clients_greeting(server, client, boxes, pattern):
    """A backtracking matcher spent seconds on each of these with the event loop blocked."""
    for name in boxes:
        client.ok(f'CREATE "{name}"')
    for i in range(3):
        client.send(f'h{i} LIST "" "{pattern}"')
    time.sleep(0.02)  # the LISTs are in the server's hands
    assert greeting_delay(server.ports["imap"]) < 0.1
    for i in range(3):
        while not (line := client.line()).startswith(f"h{i} "):
            assert not line.startswith("* LIST"), line  # nothing ends in "b" or "x"
        assert line.startswith(f"h{i} OK"), line
    [line] = client.ok(f'LIST "" "*{boxes[0][-3:]}"')
    assert line.endswith(f'"{boxes[0]}"'), line


# --- commands in the wrong state (RFC 9051 §3) -------------------------------------------------------
def raw_imap(port: int) -> tuple[socket.socket, object]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    return sock, f


@pytest.mark.parametrize(("command", "text"), [
    (b"CHECK", b"Not authenticated"),  # selected state only
    (b"COMPRESS DEFLATE", b"Not authenticated"),  # authenticated state (RFC 4978 §3)
    (b"FETCH 1 FLAGS", b"Not authenticated"),
    (b"LIST \"\" *", b"Not authenticated"),
])
def test_commands_before_login_get_bad_and_are_not_run(server, command, text):
    sock, f = raw_imap(server.ports["imap"])
    try:
        sock.sendall(b"a " + command + b"\r\nb NOOP\r\n")
        assert f.readline() == b"a BAD " + text + b"\r\n"
        assert f.readline() == b"b OK NOOP completed\r\n"  # COMPRESS did not start: this is plain text
    finally:
        sock.close()


def test_check_needs_a_selected_mailbox_and_login_is_refused_after_login(client):
    _lines, done = client.command("CHECK")
    assert done.endswith("BAD No mailbox selected"), done
    _lines, done = client.command("LOGIN a b")
    assert done.endswith("BAD Already authenticated"), done
    client.ok("SELECT INBOX")
    client.ok("CHECK")


# --- COMPRESS DEFLATE followed by bytes that are not DEFLATE data (RFC 4978) -------------------------
@pytest.fixture
def quiet_log(caplog: pytest.LogCaptureFixture):
    """The records the server logged during the test; the test fails on any ERROR or traceback."""
    caplog.set_level(logging.INFO)
    yield caplog
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, "\n".join(f"{r.name}: {r.getMessage()}\n{r.exc_text or ''}" for r in bad)


def closed_without_more(client: ImapLines) -> bool:
    try:
        return client.file.readline() == b""
    except ConnectionError:
        return True


@pytest.mark.parametrize("pipelined", [False, True], ids=["after-ok", "pipelined"])
def test_compress_then_garbage_closes_quietly_and_others_go_on(server, user, client, quiet_log, pipelined):
    garbage = b"\xff\xfe this is not deflate data\r\n" * 4
    if pipelined:  # the garbage arrives with the command: it is inflated as COMPRESS starts
        client.sock.sendall(b"c COMPRESS DEFLATE\r\n" + garbage)
        assert client.line() == "c OK DEFLATE active"
    else:
        client.ok("COMPRESS DEFLATE")
        client.sock.sendall(garbage)
    assert closed_without_more(client)
    wait_for(lambda: any("imap.compress.broken" in r.getMessage() for r in quiet_log.records), 5,
             "the log line for the broken stream")
    other = ImapLines(server.ports["imaps"], user)
    other.ok("NOOP")
    other.close()


def test_commands_pipelined_behind_compress_are_inflated(client):
    """Bytes that arrive with COMPRESS are compressed too (RFC 4978 §3), even those already read."""
    deflater, inflater = zlib.compressobj(6, zlib.DEFLATED, -15), zlib.decompressobj(-15)
    client.sock.sendall(b"c COMPRESS DEFLATE\r\n" + deflater.compress(b"n NOOP\r\n") + deflater.flush(zlib.Z_SYNC_FLUSH))
    assert client.line() == "c OK DEFLATE active"
    answer = b""
    while b"\r\n" not in answer:
        chunk = client.file.read1(65536)
        assert chunk, "closed"
        answer += inflater.decompress(chunk)
    assert answer == b"n OK NOOP completed\r\n"


# --- RENAME and the name limits of the children that move with it ------------------------------------
@pytest.mark.parametrize(("parent", "child", "new"), [
    ("p", "p/" + "x" * 509, "ppppp"),  # the child's name grows past 512 characters
    ("d", "d/" + "/".join(["s"] * 31), "e/f"),  # the child grows past 32 levels
], ids=["length", "depth"])
def test_rename_refuses_when_a_child_would_break_the_name_limits(client, parent, child, new):
    client.ok(f'CREATE "{child}"')
    before = client.ok('LIST "" "*"')
    _lines, done = client.command(f'RENAME "{parent}" "{new}"')
    assert done.split(" ")[1:3] == ["NO", "[CANNOT]"], done
    assert client.ok('LIST "" "*"') == before  # nothing changed, not even the new parent


# --- literals before login, and the node's budget for them (issue #9 §2) ------------------------------
class Raw:
    """A plain-text IMAP connection, greeted."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.file = self.sock.makefile("rb")
        assert self.file.readline().startswith(b"* OK")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        return self.file.readline()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_huge_literals_before_login_are_refused_without_being_read(server):
    """Four unauthenticated connections announce 25 MiB literals: none is invited to send one (it was
    '+ Ready' and 25 MiB buffered each); a literal a password could need is still fine."""
    clients = [Raw(server.ports["imap"]) for _ in range(4)]
    try:
        for i, c in enumerate(clients):
            c.send(f"a{i} LOGIN {{{25 * 1024 * 1024}}}\r\n".encode())
        for i, c in enumerate(clients):
            assert c.line() == f"a{i} BAD [TOOBIG] Literal too large\r\n".encode()
        # non-synchronizing: refused, and the bytes that follow are skipped, not kept
        c = clients[0]
        c.send(b"b ID (\"x\" {100000+}\r\n" + b"y" * 100_000 + b")\r\nc NOOP\r\n")
        assert c.line() == b"b NO [TOOBIG] Literal too large\r\n"
        assert c.line() == b"c OK NOOP completed\r\n"
        c.send(b"d ID (\"x\" {8192}\r\n")  # what LOGIN or AUTHENTICATE could need
        assert c.line() == b"+ Ready for literal data\r\n"
        c.send(b"z" * 8192 + b")\r\n")
        assert c.line().startswith(b"* ID ")
        assert c.line() == b"d OK ID completed\r\n"
    finally:
        for c in clients:
            c.close()


def test_largest_id_rfc_2971_allows_is_accepted_before_login(server):
    """30 fields of 30 octets with 1024-octet values (RFC 2971 §3.3): a 32 KiB line (imaptest's id script)."""
    pairs = " ".join(f'"{i:030d}" "{"v" * 1024}"' for i in range(30))
    c = Raw(server.ports["imap"])
    try:
        c.send(f"a ID ({pairs})\r\n".encode())
        assert c.line().startswith(b"* ID ")
        assert c.line() == b"a OK ID completed\r\n"
        c.send(b"b ID (" + b'"x" "' + b"v" * 50_000 + b'")\r\n')  # but not more than that
        assert c.line() == b"b BAD line too long\r\n"
    finally:
        c.close()


def test_literal_limits_grow_at_login_and_shrink_again_after_starttls(server, user):
    c = Raw(server.ports["imap"])
    try:
        c.send(b"s STARTTLS\r\n")
        assert c.line().startswith(b"s OK")
        c.sock = client_tls().wrap_socket(c.sock)
        c.file = c.sock.makefile("rb")
        c.send(b"a ID (\"x\" {9000}\r\n")
        assert c.line() == b"a BAD [TOOBIG] Literal too large\r\n"
        c.send(f'l LOGIN "{user}" "{PASSWORD}"\r\n'.encode())
        assert c.line().startswith(b"l OK")
        message = b"Subject: big\r\n\r\n" + b"x" * 100_000 + b"\r\n"
        c.send(f"p APPEND INBOX {{{len(message)}}}\r\n".encode())
        assert c.line() == b"+ Ready for literal data\r\n"
        c.send(message + b"\r\n")
        assert c.line().startswith(b"p OK [APPENDUID ")
    finally:
        c.close()


def test_literal_bytes_of_all_connections_share_one_budget(tmp_path):
    """limits.max_literal_memory = 20000: two 8000-byte literals in flight fit, a third waits for one
    of them to be done (NO [LIMIT], unread), also when its connection simply goes away."""
    srv = start_server(tmp_path, "[limits]\nmax_literal_memory = 20000\n")
    clients: list[Raw] = []
    try:
        clients = [Raw(srv.ports["imap"]) for _ in range(4)]
        first, second, third, fourth = clients
        for c in (first, second):
            c.send(b"a ID (\"x\" {8000}\r\n")
            assert c.line() == b"+ Ready for literal data\r\n"
        third.send(b"b ID (\"x\" {8000}\r\nc NOOP\r\n")
        assert third.line() == b"b NO [LIMIT] Too much data in transit, try again later\r\n"
        assert third.line() == b"c OK NOOP completed\r\n"  # refused, not counted against the session
        first.send(b"f" * 8000 + b")\r\n")  # done: its 8000 bytes are free again
        assert first.line().startswith(b"* ID ")
        assert first.line() == b"a OK ID completed\r\n"
        third.send(b"d ID (\"x\" {8000}\r\n")
        assert third.line() == b"+ Ready for literal data\r\n"
        second.close()  # gone in the middle of its literal: the session gives its bytes back

        def admitted() -> bool:
            fourth.send(b"e ID (\"x\" {8000}\r\n")
            return fourth.line() == b"+ Ready for literal data\r\n"

        wait_for(admitted, 10, "the closed connection's literal to be released")
    finally:
        for c in clients:
            c.close()
        srv.stop()
