"""Connections are counted the moment they are accepted, TLS handshakes included (issue #9: 600 silent
connections to IMAPS were each held 30 s outside every limit, until EMFILE paused accepting everywhere)."""

from __future__ import annotations

import socket
import time

from conftest import start_server
from imap_client import ImapLines


def closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def test_silent_tls_clients_count_from_accept_and_are_dropped_at_the_handshake_timeout(tmp_path) -> None:
    srv = start_server(tmp_path, '[limits]\nmax_connections_per_ip = 5\ntls_handshake_timeout = "2s"\n')
    try:
        port = srv.ports["imaps"]
        silent = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(5)]
        time.sleep(0.3)
        extra = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(5)]
        # Past the per-client limit: closed at once, before any handshake work.
        assert all(closed_within(s, 1.5) for s in extra)
        # The ones admitted wait for their ClientHello only as long as the handshake timeout.
        started = time.monotonic()
        assert all(closed_within(s, 10) for s in silent)
        assert time.monotonic() - started < 5
        for s in silent + extra:
            s.close()
        user = srv.add_user("after")
        ImapLines(port, user).close()  # the count came back: a real client gets in
    finally:
        srv.stop()


def read_until_closed(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sends before it closes, or None if it is still open after ``seconds``."""
    sock.settimeout(seconds)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except TimeoutError:
        return None
    except ConnectionError:
        pass
    return data


def test_the_command_timeout_counts_from_the_last_command_not_from_the_first(tmp_path) -> None:
    """One timer per connection is moved by every read (net/connection.py): a client that keeps
    talking is never cut off, one that goes quiet is, on SMTP and on IMAP after login."""
    srv = start_server(tmp_path, '[limits]\ncommand_timeout = "1s"\n')
    try:
        user = srv.add_user("talker")
        smtp = socket.create_connection(("127.0.0.1", srv.ports["smtp"]), timeout=10)
        assert smtp.recv(1024).startswith(b"220")
        imap = ImapLines(srv.ports["imaps"], user)
        started = time.monotonic()
        while time.monotonic() - started < 3:  # three timeouts' worth of a client that keeps talking
            smtp.sendall(b"NOOP\r\n")
            assert smtp.recv(1024).startswith(b"250")
            quiet = time.monotonic()  # the last time the SMTP client was heard
            imap.command("NOOP")
            time.sleep(0.3)
        assert read_until_closed(smtp, 5) is not None
        assert 0.8 < time.monotonic() - quiet < 3
        assert read_until_closed(imap.sock, 5) is not None
        smtp.close()
        imap.file.close()
        imap.sock.close()
    finally:
        srv.stop()
