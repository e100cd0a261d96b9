"""Anti-spam layer 1 over real SMTP (issue #10): block and allow lists set with the real command line on
a running node, DNSBLs served by a real dnsmasq, the per-client connection rate.

Clients come from distinct loopback addresses (127.0.0.x: each its own client for the lists, the DNSBL
and the rate); the node exempts nobody (``antispam.exempt_networks = []``), as a node on the Internet.
"""

from __future__ import annotations

import re
import smtplib
import socket
import time
from collections.abc import Iterator

import pytest

from conftest import DOMAIN, PASSWORD, ServerThread, client_tls, dizimail_cli, start_server
from helpers import fetch_all, greeting, transaction, wait_for
from peers import PTR, A, DnsmasqPeer, free_dns_port

RATE = 20
OTHER_DOMAIN = "second.test"


@pytest.fixture(scope="module")
def dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsmasqPeer]:
    records = [A("2.0.0.127.dnsbl.test", "127.0.0.2"),  # 127.0.0.2 is listed (the RFC 5782 test entry)
               PTR("127.0.0.2", "listed.test"),  # its own PTR (not the one the A record would make)
               A("3.0.0.127.codes.test", "127.255.255.254")]  # an error code for 127.0.0.3: not a listing
    with DnsmasqPeer(tmp_path_factory.mktemp("dns"), free_dns_port(), records) as peer:
        yield peer


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, dns: DnsmasqPeer) -> Iterator[ServerThread]:
    srv = start_server(tmp_path_factory.mktemp("antispam"), extra=(
        f'\n[antispam]\ndnsbl_zones = ["dnsbl.test", "codes.test"]\nexempt_networks = []\npregreet_wait = "0s"\n'
        f'max_connection_rate = {RATE}\n'
        f'[delivery]\ndns_servers = ["{dns.nameserver}"]\nsmarthost = "127.0.0.1:{free_dns_port()}"\n'))
    srv.call(lambda s: s.accounts.add_domain(OTHER_DOMAIN))
    yield srv
    srv.stop()


def cli(node: ServerThread, *args: str, check: bool = True):
    return dizimail_cli(node.config_file, *args, check=check)


def seen_by_the_node() -> None:
    """The node re-reads its lists at most every 2 s (services.access.CACHE_SECONDS)."""
    time.sleep(2.1)


def users_in_both_domains(node: ServerThread, local: str) -> tuple[str, str]:
    ours = node.add_user(local)
    theirs = f"{local}@{OTHER_DOMAIN}"
    node.call(lambda s: s.accounts.add_user(theirs, PASSWORD))
    return ours, theirs


def test_a_blocked_address_is_refused_at_the_greeting_until_allowed(node):
    ip = "127.0.0.20"
    cli(node, "block", "add", ip, "--note", "test")
    wait_for(lambda: greeting(node, ip)[0] == 554, timeout=10, what="the block to take effect")
    code, text = greeting(node, ip)
    assert code == 554 and "5.7.1" in text and f"[{ip}]" in text, (code, text)
    assert greeting(node, "127.0.0.21")[0] == 220  # another client is not affected
    cli(node, "allow", "add", ip)  # allow overrides block
    wait_for(lambda: greeting(node, ip)[0] == 220, timeout=10, what="the allow entry to take effect")
    cli(node, "allow", "remove", ip)
    cli(node, "block", "remove", ip)


def test_sender_domain_and_subdomain_entries(node):
    user = node.add_user("senders")
    ip = "127.0.0.22"
    cli(node, "block", "add", "@usa.test", "spam@other.test", "*.sub.test")
    expected = {"bob@usa.test": 550, "BOB@USA.TEST": 550, "spam@other.test": 550, "ham@other.test": 250,
                "x@a.sub.test": 550, "x@sub.test": 250, "x@mail.usa.test": 250}
    seen_by_the_node()
    got = {sender: transaction(node, ip, sender, user)[1] for sender in expected}
    assert got == expected
    _, _, text = transaction(node, ip, "bob@usa.test", user)
    assert "5.7.1" in text and "<bob@usa.test>" in text, text
    cli(node, "allow", "add", "bob@usa.test")  # one sender of a blocked domain let through
    seen_by_the_node()
    assert transaction(node, ip, "bob@usa.test", user)[1] == 250
    assert transaction(node, ip, "eve@usa.test", user)[1] == 550
    listed = cli(node, "block", "list").stdout
    assert "@usa.test" in listed and "*.sub.test" in listed and "spam@other.test" in listed
    for entry in ("@usa.test", "spam@other.test", "*.sub.test"):
        cli(node, "block", "remove", entry)
    cli(node, "allow", "remove", "bob@usa.test")


def test_a_domain_list_guards_only_that_domains_recipients(node):
    ours, theirs = users_in_both_domains(node, "guarded")
    cli(node, "block", "add", "@pest.test", "--domain", DOMAIN)
    seen_by_the_node()
    _, mail, last = transaction(node, "127.0.0.23", "a@pest.test", ours)
    assert mail == 250 and last.startswith("550 5.7.1") and f"<{ours}>" in last, last
    assert transaction(node, "127.0.0.23", "a@pest.test", theirs)[2].startswith("250")
    assert [m for m in fetch_all(node, theirs) if b"from 127.0.0.23" in m]
    cli(node, "block", "remove", "@pest.test", "--domain", DOMAIN)


def test_dnsbl_listing_refuses_naming_the_list_and_is_asked_once(node, dns):
    user = node.add_user("dnsbl")
    code, mail, last = transaction(node, "127.0.0.2", "someone@example.org", user)
    assert (code, mail) == (220, 250) and last.startswith("554 5.7.1") and "dnsbl.test" in last, last
    assert transaction(node, "127.0.0.2", "someone@example.org", user)[2].startswith("554 5.7.1")
    queries = re.findall(r"query\[A\] 2\.0\.0\.127\.dnsbl\.test", dns.log())
    assert len(queries) == 1, dns.log()  # the answer is cached: one query for both connections
    # A user logged in from the same address sends (a road warrior on a listed dynamic address).
    with smtplib.SMTP("127.0.0.1", node.ports["submission"], source_address=("127.0.0.2", 0), timeout=30) as s:
        s.starttls(context=client_tls())
        s.login(user, PASSWORD)
        assert not s.sendmail(user, [user], b"Subject: from a listed address\r\n\r\nmine\r\n")


def test_dnsbl_error_codes_are_not_listings(node, dns):
    user = node.add_user("codes")
    assert transaction(node, "127.0.0.3", "someone@example.org", user)[2].startswith("250")
    assert "3.0.0.127.codes.test" in dns.log()
    assert [m for m in fetch_all(node, user) if b"from 127.0.0.3" in m]


def test_a_domain_allow_entry_overrides_the_dnsbl_for_its_recipients(node):
    ours, theirs = users_in_both_domains(node, "dnsbl-allowed")
    cli(node, "allow", "add", "127.0.0.2", "--domain", OTHER_DOMAIN)
    seen_by_the_node()
    assert transaction(node, "127.0.0.2", "partner@example.org", theirs)[2].startswith("250")
    assert transaction(node, "127.0.0.2", "partner@example.org", ours)[2].startswith("554 5.7.1")
    cli(node, "allow", "remove", "127.0.0.2", "--domain", OTHER_DOMAIN)


def test_connection_rate_per_client(node):
    ip = "127.0.0.60"
    codes = []
    for _ in range(RATE + 1):
        codes.append(greeting(node, ip)[0])
    assert codes[:RATE] == [220] * RATE and codes[RATE] == 421, codes
    code, text = greeting(node, ip)
    assert code == 421 and "4.7.0" in text, text
    assert greeting(node, "127.0.0.61")[0] == 220  # another client still comes in


def test_import_reports_bad_lines_and_keeps_good_ones(node, tmp_path):
    listing = tmp_path / "blocks.txt"
    listing.write_text("# spam sources\n198.51.100.0/24 botnet\nusa.example\n\n@junk.test\n0.0.0.0/0\n"
                       "spam*@x.test\n127.0.0.24\n", encoding="utf-8")
    result = cli(node, "block", "import", str(listing), check=False)
    assert result.returncode == 1
    assert "3 added, 0 already listed, 3 lines rejected" in result.stdout
    errors = result.stderr.splitlines()
    assert [e.split(":")[0] for e in errors] == ["line 3", "line 6", "line 7"], errors
    assert "write @usa.example" in errors[0]
    seen_by_the_node()
    assert greeting(node, "127.0.0.24")[0] == 554
    for entry in ("198.51.100.0/24", "@junk.test", "127.0.0.24"):
        cli(node, "block", "remove", entry)


def test_a_dnsbl_that_does_not_answer_never_blocks(tmp_path):
    """A resolver that never replies (a bound UDP socket nobody reads): the mail is taken after the
    DNSBL timeout."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        srv = start_server(tmp_path / "n", extra=(
            '\n[antispam]\ndnsbl_zones = ["dnsbl.test"]\nexempt_networks = []\npregreet_wait = "0s"\ndnsbl_timeout = "1s"\n'
            f'[delivery]\ndns_servers = ["127.0.0.1:{silent.getsockname()[1]}"]\n'
            f'smarthost = "127.0.0.1:{free_dns_port()}"\n'))
        try:
            user = srv.add_user("silent")
            started = time.monotonic()
            assert transaction(srv, "127.0.0.5", "someone@example.org", user)[2].startswith("250")
            assert time.monotonic() - started < 20
            assert [m for m in fetch_all(srv, user) if b"from 127.0.0.5" in m]
        finally:
            srv.stop()
