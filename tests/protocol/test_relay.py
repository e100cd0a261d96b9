"""The gateway relays only for its own: a battery of classic open-relay tricks (RFC 2505), all refused.

The gateway routes org.test to the inner server (accepted from anyone) and allows relaying from one
listed network (127.0.0.2) and for authenticated users; a client at 127.0.0.1 is a stranger.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator

import pytest

from conftest import ServerThread, dizimail_cli, free_ports, start_server
from helpers import RawClient, submit

TRICKS = [
    "victim@outside.test",
    "VICTIM@OUTSIDE.TEST",
    "victim%outside.test@org.test",  # percent hack through a routed domain
    "victim%outside.test@example.test",  # ... and through a local domain
    "victim!outside.test@org.test",  # bang path
    "outside.test!victim@org.test",
    '"victim@outside.test"@org.test',  # quoted local part carrying an address
    '"victim%outside.test"@org.test',
    "@org.test:victim@outside.test",  # source route ending outside
    "@org.test,@example.test:victim@outside.test",
    "victim@[127.0.0.1]",  # address literals: ours or not, never a relay
    "victim@[192.0.2.1]",
    "victim%outside.test@[127.0.0.1]",
    "victim@org.test.outside.test",  # our domain as a prefix of someone else's
    "victim@outside.test.",
    "victim@outside.test@org.test",
    "postmaster@outside.test",
]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    gw = start_server(tmp_path_factory.mktemp("gw"))
    dizimail_cli(gw.config_file, "route", "add", "org.test", f"127.0.0.1:{free_ports(1)[0]}")
    dizimail_cli(gw.config_file, "relay", "allow", "127.0.0.2")
    yield gw
    gw.stop()


@pytest.mark.parametrize("rcpt", TRICKS)
def test_open_relay_trick_is_refused(gateway, rcpt):
    client = RawClient(gateway.ports["smtp"])
    try:
        assert client.reply().startswith(b"220")
        client.send(b"EHLO stranger.example\r\n")
        assert client.reply().startswith(b"250")
        client.send(b"MAIL FROM:<spammer@outside.test>\r\n")
        assert client.reply().startswith(b"250")
        client.send(f"RCPT TO:<{rcpt}>\r\n".encode())
        reply = client.reply()
        assert reply[:1] == b"5", (rcpt, reply)
    finally:
        client.close()


def test_a_spoofed_local_sender_does_not_open_the_relay(gateway):
    with smtplib.SMTP("127.0.0.1", gateway.ports["smtp"], timeout=30) as s:
        s.ehlo("x")
        s.mail("alice@org.test")
        assert s.rcpt("victim@outside.test")[0] == 554


def test_nothing_for_outside_domains_was_queued_by_the_battery(gateway):
    listing = dizimail_cli(gateway.config_file, "queue", "list").stdout
    assert "outside.test" not in listing and "192.0.2.1" not in listing


def test_the_routed_domain_is_accepted_from_anyone(gateway):
    with smtplib.SMTP("127.0.0.1", gateway.ports["smtp"], timeout=30) as s:
        s.ehlo("x")
        s.mail("friend@outside.test")
        assert s.rcpt("anyone@org.test")[0] == 250
        s.rset()


def test_a_listed_network_and_an_authenticated_user_may_relay(gateway):
    with smtplib.SMTP("127.0.0.1", gateway.ports["smtp"], timeout=30, source_address=("127.0.0.2", 0)) as s:
        s.ehlo("inner.example")
        s.mail("alice@org.test")
        assert s.rcpt("friend@outside.test")[0] == 250
        s.rset()
    user = gateway.add_user("relayer")
    with submit(gateway, user) as s:
        s.mail(user)
        assert s.rcpt("friend@outside.test")[0] == 250
        s.rset()


def test_relay_networks_are_listed_and_removed_without_a_restart(gateway):
    assert "127.0.0.2/32" in dizimail_cli(gateway.config_file, "relay", "list").stdout
    refused = dizimail_cli(gateway.config_file, "relay", "allow", "0.0.0.0/0", check=False)
    assert refused.returncode != 0 and "open relay" in refused.stderr
    dizimail_cli(gateway.config_file, "relay", "remove", "127.0.0.2")
    time.sleep(2.1)  # the policy re-reads the list at most every 2 s
    with smtplib.SMTP("127.0.0.1", gateway.ports["smtp"], timeout=30, source_address=("127.0.0.2", 0)) as s:
        s.ehlo("inner.example")
        s.mail("alice@org.test")
        assert s.rcpt("friend@outside.test")[0] == 554
    dizimail_cli(gateway.config_file, "relay", "allow", "127.0.0.2")
