"""Verdict headers across the two networks (issue #10): the gateway judges internet mail and relays it
with its Authentication-Results and X-Spam-* headers; the inner server believes them from its gateway
alone (the user's Junk folder follows the gateway's score by the user's own thresholds) and removes
such headers from everyone else (RFC 8601 §5)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import DOMAIN, PASSWORD, ServerThread, dizimail_cli, start_server
from helpers import add_route, fetch_all, junk, send_data, submit, transaction, wait_for
from peers import DnsmasqPeer, free_dns_port


@pytest.fixture(scope="module")
def dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsmasqPeer]:
    with DnsmasqPeer(tmp_path_factory.mktemp("dns"), free_dns_port()) as peer:
        yield peer


@pytest.fixture(scope="module")
def networks(tmp_path_factory: pytest.TempPathFactory, dns: DnsmasqPeer) -> Iterator[tuple[ServerThread, ServerThread]]:
    inner = start_server(tmp_path_factory.mktemp("inner"), hostname="mail.example.test", extra=(
        '\n[antispam]\ngateways = ["127.0.0.1/32"]\nauthserv_ids = ["gw.example.test"]\n'))
    gateway = start_server(tmp_path_factory.mktemp("gw"), hostname="gw.example.test", extra=(
        '\n[antispam]\ndnsbl_zones = []\nexempt_networks = []\npregreet_wait = "0s"\n'
        'weights = { "helo.not_fqdn" = 6.0 }\n'
        f'[delivery]\ndns_servers = ["{dns.nameserver}"]\npoll_interval = "0.2s"\n'))
    gateway.call(lambda s: s.accounts.remove_domain(DOMAIN))  # the gateway stores no mail: it routes it
    add_route(gateway, DOMAIN, f"127.0.0.1:{inner.ports['smtp']}")
    yield inner, gateway
    gateway.stop()
    inner.stop()


def test_the_inner_server_files_mail_by_its_gateways_verdict(networks):
    inner, gateway = networks
    user = inner.add_user("gw1")
    greeted, mail, last = transaction(gateway, "127.0.0.60", "someone@example.org", user, helo="notaname",
                                      subject="cheap stuff")
    assert (greeted, mail) == (220, 250) and last.startswith("250"), last
    (message,) = wait_for(lambda: junk(inner, user), what="the relayed message in the inner server's Junk")
    head = message.split(b"\r\n\r\n", 1)[0].decode()
    assert "Authentication-Results: gw.example.test;" in head, head  # the gateway's, kept
    assert "Subject: [SPAM] cheap stuff" in head and "gateway=trusted +" in head, head
    assert fetch_all(inner, user) == []


def test_mail_polled_from_the_gateways_holding_mailbox_is_filed_by_its_verdict_too(networks):
    """Poll mode (the gateway holds, the inner server fetches in envelope mode): the user's Junk folder
    follows the gateway's score as when it pushes over SMTP."""
    inner, gateway = networks
    gateway.call(lambda s: s.accounts.add_domain("hold.test"))
    gateway.call(lambda s: s.accounts.add_user("holder@hold.test", PASSWORD, "holding", 0))
    add_route(gateway, "poll.test", "hold:holder@hold.test")
    inner.call(lambda s: s.accounts.add_domain("poll.test"))
    user = "polled@poll.test"
    inner.call(lambda s: s.accounts.add_user(user, PASSWORD, "polled", 0))
    greeted, mail, last = transaction(gateway, "127.0.0.62", "someone@example.org", user, helo="notaname",
                                      subject="cheap stuff")
    assert (greeted, mail) == (220, 250) and last.startswith("250"), last
    dizimail_cli(inner.config_file, "fetch", "add", f"127.0.0.1:{gateway.ports['pop3']}", "holder@hold.test",
                 "--password", PASSWORD, "--security", "starttls", "--no-verify", "--interval", "1h")
    dizimail_cli(inner.config_file, "fetch", "run")
    (message,) = wait_for(lambda: junk(inner, user), what="the polled message in the inner server's Junk")
    head = message.split(b"\r\n\r\n", 1)[0].decode()
    assert "Authentication-Results: gw.example.test;" in head, head
    assert "Subject: [SPAM] cheap stuff" in head and "gateway=trusted +" in head, head
    assert fetch_all(inner, user) == [] and fetch_all(gateway, "holder@hold.test") == []


def test_verdict_headers_from_anyone_else_are_removed(networks):
    inner, _gateway = networks
    user = inner.add_user("gw2")
    forged = (b"Authentication-Results: gw.example.test; spf=pass smtp.mailfrom=boss@example.test\r\n"
              b"Authentication-Results: mail.example.test; dkim=pass header.d=example.test\r\n"
              b"Authentication-Results: mx.elsewhere.org; spf=fail smtp.mailfrom=x@example.org\r\n"
              b"X-Spam-Score: 0.0\r\nX-Spam-Flag: NO\r\nX-Spam-Status: No, score=0.0\r\n"
              b"Subject: trust me\r\n\r\nhello\r\n")
    assert send_data(inner, "127.0.0.61", user, forged)[0] == 250
    (message,) = fetch_all(inner, user)
    head = message.split(b"\r\n\r\n", 1)[0].decode()
    assert "gw.example.test;" not in head and "mail.example.test; dkim" not in head, head
    assert "X-Spam" not in head, head
    assert "Authentication-Results: mx.elsewhere.org; spf=fail" in head and "Subject: trust me" in head, head
    assert send_data(inner, "127.0.0.61", user, b"X-Spam-Score: 9.9\r\nSubject: not junk\r\n\r\nhi\r\n")[0] == 250
    assert junk(inner, user) == [] and len(fetch_all(inner, user)) == 2  # a forged score files nothing


def test_a_logged_in_users_verdict_headers_are_removed_too(networks):
    inner, _gateway = networks
    user, colleague = inner.add_user("gw3"), inner.add_user("gw4")
    with submit(inner, user) as s:
        s.sendmail(user, [colleague], b"X-Spam-Flag: YES\r\nAuthentication-Results: mail.example.test; dkim=pass\r\n"
                                      b"Subject: from inside\r\n\r\nhi\r\n")
    (message,) = fetch_all(inner, colleague)
    head = message.split(b"\r\n\r\n", 1)[0]
    assert b"X-Spam-Flag" not in head and b"dkim=pass" not in head and b"Subject: from inside" in head, head
