"""IMAP front-end under attack, over real sockets: hostile LIST patterns, literals before login,
broken COMPRESS streams, commands in the wrong state, RENAME past the name limits."""

from __future__ import annotations

import logging
import socket
import time
import zlib

import pytest

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
    deadline = time.monotonic() + 5
    while not any("imap.compress.broken" in r.getMessage() for r in quiet_log.records):
        assert time.monotonic() < deadline, "no log line for the broken stream"
        time.sleep(0.02)
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
