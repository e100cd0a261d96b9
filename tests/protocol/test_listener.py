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
