"""A seeded, bounded fuzz run over SMTP, POP3, IMAP and ManageSieve, before and after login: no session may die with a
traceback, and the node serves normally afterwards (issue #9: a 1.2-million-line run found sessions that
dropped clients with a traceback on an over-long SASL line, bad COMPRESS data, ``$`` before SAVE ...)."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from collections.abc import Iterator

import pytest

from conftest import PASSWORD, ServerThread, start_server
from fuzzing import fuzz, scenarios
from imap_client import ImapLines, message

SEED = 20261205


class _Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(record)


@pytest.fixture
def fuzz_server(tmp_path) -> Iterator[ServerThread]:
    extra = ('fail_threshold = 1000000\nplaintext_networks = ["127.0.0.0/8"]\n'  # appended to [auth]
             '[limits]\nmax_connections_per_ip = 5000\nmax_bad_commands = 1000\ncommand_timeout = "20s"\n')
    srv = start_server(tmp_path, extra)
    yield srv
    srv.stop()


def test_a_seeded_fuzz_run_kills_no_session_and_logs_no_traceback(fuzz_server: ServerThread) -> None:
    srv = fuzz_server
    user = srv.add_user("fuzzed")
    imap = ImapLines(srv.ports["imaps"], user)
    try:
        for i, subject in enumerate(["plain", "[a]" * 3000, "Re: Fwd: [list] \u68c0\u4fee", "=?utf-8?b?5qOA5L+u?="]):
            imap.append("INBOX", message(subject + str(i), 2000))
        imap.ok("CREATE x")
    finally:
        imap.close()
    handler = _Tracebacks()
    logging.getLogger().addHandler(handler)
    try:
        sent = asyncio.run(fuzz(scenarios(srv.ports, user, PASSWORD), seed=SEED, sessions=40, lines=400))
    finally:
        logging.getLogger().removeHandler(handler)
    assert sent == 9 * 40 * 400
    crashed = [f"{r.name}: {r.getMessage()}\n{logging.Formatter().formatException(r.exc_info) if r.exc_info else ''}"
               for r in handler.records]
    assert crashed == [], "\n".join(crashed[:5])
    # Every listener still greets and serves.
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=30) as s:
        assert s.noop()[0] == 250
    imap = ImapLines(srv.ports["imaps"], user)
    try:
        assert any("EXISTS" in line for line in imap.ok("SELECT INBOX"))
    finally:
        imap.close()
