"""A user's heavy Sieve script meeting hostile mail never stalls the node (issue #12): anyone can send a
45 KB subject through port 25 to a user whose script matches it with many wildcards and match variables,
and a ManageSieve client can upload 64 KiB scripts again and again; meanwhile new SMTP and ManageSieve
clients are greeted within 100 ms (the scripts run and compile in worker threads, never on the event
loop), and each message is delivered (a script past its processor budget keeps the message in INBOX)."""

from __future__ import annotations

import base64
import smtplib
import socket
import time

import pytest

from conftest import PASSWORD, ServerThread, client_tls, write_config
from helpers import busy, greeting_delays, imap_login
from processes import serving

RULES = "".join(f'if header :matches "subject" "*a*a*a*a*a*a*a*{i}*c" {{ set "v{i}" "${{1}}-${{2}}"; }}\n'
                for i in range(10)) + \
    'if body :text :contains "zz" { fileinto :create "Z/${v1}"; }\n' + \
    "".join(f'if address :all :matches ["from", "to", "cc"] "*@*{i}*.example" {{ addflag "f{i}"; }}\n'
            for i in range(10))
SCRIPT = 'require ["variables", "fileinto", "mailbox", "body", "imap4flags"];\n' + RULES
HOSTILE = "a" * 45_000 + "c"
_LINES = [f'if anyof (header :matches "subject" "*x*y*z*{i}", address :domain :is "from" "d{i}.test") '
          f'{{ fileinto "f{i % 7}"; }}\n' for i in range(1000)]
BIG_SCRIPT = 'require "fileinto";\n' + "".join(_LINES[:(64 * 1024 - 40) // len(_LINES[999])])  # under 64 KiB


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("sieve-worst")
    config_file, ports = write_config(tmp)
    setup = ServerThread(config_file, ports)
    setup.start()
    try:
        user = setup.add_user("ruled")

        async def rules(s):
            account = await s.accounts.get_user(user)
            await s.sieve.put(account.id, "heavy", SCRIPT, activate=True)
        setup.call(rules)
    finally:
        setup.stop()
    with serving(config_file, ports, tmp / "node.log") as served:
        yield served, user


def _hostile_mail(ports: dict[str, int], user: str) -> None:
    with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=120) as smtp:
        smtp.sendmail("attacker@evil.example", [user], (
            f"From: a@evil.example\r\nTo: {user}\r\nSubject: {HOSTILE}\r\n\r\nzz {'b' * 5000}\r\n").encode())


def _hostile_small_header(ports: dict[str, int], user: str) -> None:
    """A header small enough for the loop's quick run (services.sieve.deliver QUICK_HEAD), a script slow on
    it: the quick run gives up within its budget and the scripts' thread runs it (many at once)."""
    with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=120) as smtp:
        for _ in range(5):
            smtp.sendmail("attacker@evil.example", [user], (
                f"From: a@evil.example\r\nTo: {user}\r\nSubject: {HOSTILE[-12_000:]}\r\n\r\nzz\r\n").encode())


def _uploads(port: int, user: str) -> None:
    """Log in over ManageSieve and store three 64 KiB scripts (each compiled by the node)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as raw:
        with raw.makefile("rb") as reader:
            assert _status(reader).startswith(b"OK")
            raw.sendall(b"STARTTLS\r\n")
            assert _status(reader).startswith(b"OK")
        with client_tls().wrap_socket(raw, server_hostname="mx.example.test") as tls, tls.makefile("rb") as reader:
            _status(reader)
            tls.sendall(b'AUTHENTICATE "PLAIN" "' + base64.b64encode(f"\0{user}\0{PASSWORD}".encode()) + b'"\r\n')
            assert _status(reader).startswith(b"OK")
            data = BIG_SCRIPT.encode()
            for n in range(3):
                tls.sendall(b'PUTSCRIPT "big%d" {%d+}\r\n' % (n, len(data)) + data + b"\r\n")
                assert _status(reader).startswith(b"OK")


def _status(reader) -> bytes:
    while not (line := reader.readline()).startswith((b"OK", b"NO", b"BYE")):
        assert line, "the connection closed"
    return line


def test_greetings_stay_fast_while_hostile_mail_meets_a_heavy_script(node):
    served, user = node
    ports = served.ports
    started = time.monotonic()
    with busy(lambda: _hostile_mail(ports, user), lambda: _uploads(ports["managesieve"], user),
              lambda: _hostile_small_header(ports, user), lambda: _hostile_small_header(ports, user)):
        smtp = greeting_delays(ports["smtp"], count=15)
        sieve = greeting_delays(ports["managesieve"], count=15, greeting=b'"IMPLEMENTATION"')
    assert time.monotonic() - started > 1
    slow = [round(d * 1000, 1) for d in smtp + sieve if d > 0.1]
    assert not slow, f"greetings over 100 ms while the heavy script ran: {slow}"
    with imap_login(served, user) as imap:  # (poplib refuses a 45 KB line)
        imap.select("INBOX", readonly=True)
        assert imap.search(None, "ALL")[1][0].split(), "the hostile messages were not kept"
