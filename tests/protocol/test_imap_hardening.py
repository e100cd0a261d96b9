"""IMAP front-end under attack, over real sockets: hostile LIST patterns, literals before login,
broken COMPRESS streams, commands in the wrong state, RENAME past the name limits."""

from __future__ import annotations

import socket
import time

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
