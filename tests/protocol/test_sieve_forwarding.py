"""What users set without writing Sieve (issue #12): forwarding rewritten with SRS so that the next
server's SPF check passes (two real nodes and a real dnsmasq serving the SPF records), bounces to the SRS
address routed back to the author, and a vacation set from the command line answering once."""

from __future__ import annotations

import json
import re
import smtplib
from collections.abc import Iterator

import pytest

from conftest import ServerThread, dizimail_cli, start_server
from helpers import add_route, api, auth_results, fetch_all, token, wait_for
from peers import TXT, DnsmasqPeer, free_dns_port

AUTHOR = "author@outside.test"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, ServerThread]]:
    # Our domain allows loopback to send; the author's domain allows only a far-away address: mail
    # forwarded with the author's own envelope sender would fail SPF at the next server.
    records = [TXT("example.test", "v=spf1 ip4:127.0.0.1 -all"), TXT("outside.test", "v=spf1 ip4:192.0.2.1 -all")]
    with DnsmasqPeer(tmp_path_factory.mktemp("dns"), free_dns_port(), records) as dns:
        far = start_server(tmp_path_factory.mktemp("far"), hostname="mx.far.test", extra=(
            '\n[antispam]\ndnsbl_zones = []\nexempt_networks = []\npregreet_wait = "0s"\n'
            f'[delivery]\ndns_servers = ["{dns.nameserver}"]\nsmarthost = "127.0.0.1:{free_dns_port()}"\n'))
        far.call(lambda s: s.accounts.add_domain("far.test"))
        ours = start_server(tmp_path_factory.mktemp("ours"))
        add_route(ours, "far.test", f"127.0.0.1:{far.ports['smtp']}")
        yield ours, far
        ours.stop()
        far.stop()


def test_forwarding_set_through_the_api_rewrites_the_sender_and_spf_passes(nodes):
    ours, far = nodes
    user = ours.add_user("traveller")
    bob = "bob@far.test"
    far.call(lambda s: s.accounts.add_user(bob, "secret-password", "Bob", 0))
    mine = token(ours, "--role", "user", "--user", user)
    status, _, stored = api(ours, "PUT", f"/api/v1/users/{user}/rules", mine,
                            {"forwarding": {"targets": [bob], "keep": True}})
    assert status == 200 and stored["forwarding"] == {"targets": [bob], "keep": True}, stored
    with smtplib.SMTP("127.0.0.1", ours.ports["smtp"], timeout=30) as s:
        s.sendmail(AUTHOR, [user], f"From: {AUTHOR}\r\nTo: {user}\r\nSubject: on the road\r\n\r\nhi\r\n".encode())
    got = wait_for(lambda: fetch_all(far, bob), timeout=60, what="the forwarded copy at the next server")
    results = auth_results(got[0])
    assert 'spf=pass smtp.mailfrom="srs0=' in results.lower(), results
    assert re.search(rb"^Return-Path: <SRS0=[^=]+=[^=]+=outside\.test=author@example\.test>\r$", got[0], re.M | re.I)
    assert [m for m in fetch_all(ours, user) if b"on the road" in m]  # a copy kept here too
    # A bounce to that sender comes back to us and goes on to the author; a forged one is refused.
    srs = re.search(rb"^Return-Path: <([^>]+)>", got[0], re.M).group(1).decode()
    with smtplib.SMTP("127.0.0.1", ours.ports["smtp"], timeout=30) as s:
        s.ehlo("mx.far.test")
        s.mail("<>")
        assert s.rcpt(srs)[0] == 250
        assert s.rcpt(srs.replace("=", "=x", 1))[0] == 550
        s.data(b"Subject: Undelivered\r\n\r\nbounce\r\n")
    queued = json.loads(dizimail_cli(ours.config_file, "queue", "list", "--json").stdout)
    assert any(r["address"] == AUTHOR for item in queued for r in item["recipients"]), queued


def test_forwarding_without_a_copy_keeps_nothing_here(nodes):
    ours, far = nodes
    user = ours.add_user("away")
    carol = "carol@far.test"
    far.call(lambda s: s.accounts.add_user(carol, "secret-password", "Carol", 0))
    dizimail_cli(ours.config_file, "sieve", "forward", user, carol, "--no-keep")
    script = dizimail_cli(ours.config_file, "sieve", "rules", user, "--script").stdout
    assert 'redirect :copy "carol@far.test";' in script and "discard;" in script
    with smtplib.SMTP("127.0.0.1", ours.ports["smtp"], timeout=30) as s:
        s.sendmail(AUTHOR, [user], f"From: {AUTHOR}\r\nSubject: passed on\r\n\r\nhi\r\n".encode())
    assert wait_for(lambda: fetch_all(far, carol), timeout=60, what="the forwarded copy")
    assert fetch_all(ours, user) == []


def test_vacation_from_the_command_line_runs_before_the_users_own_script(nodes):
    ours, _far = nodes
    user = ours.add_user("holiday")
    writer = ours.add_user("colleague")

    async def own(s):
        account = await s.accounts.get_user(user)
        await s.sieve.put(account.id, "mine", 'require "fileinto";\nfileinto "INBOX";\n', activate=True)
    ours.call(own)
    dizimail_cli(ours.config_file, "sieve", "vacation", user, "--text", "我在休假。On leave.", "--subject", "休假中")
    past = dizimail_cli(ours.config_file, "sieve", "rules", user).stdout
    assert json.loads(past)["vacation"]["subject"] == "休假中"
    for n in range(2):
        with smtplib.SMTP("127.0.0.1", ours.ports["smtp"], timeout=30) as s:
            s.sendmail(writer, [user], f"From: {writer}\r\nTo: {user}\r\nSubject: q{n}\r\n\r\nhi\r\n".encode())
    replies = wait_for(lambda: fetch_all(ours, writer), what="the vacation reply")
    assert len(fetch_all(ours, user)) == 2 and len(replies) == 1
    assert "=?utf-8?" in replies[0].decode().split("Subject: ", 1)[1].split("\r\n")[0]
    # Dates that have passed: no more replies (and the settings refuse an end before the start).
    bad = dizimail_cli(ours.config_file, "sieve", "vacation", user, "--text", "x", "--from", "2026-02-01",
                       "--until", "2026-01-01", check=False)
    assert bad.returncode != 0 and "before the start" in bad.stderr
    dizimail_cli(ours.config_file, "sieve", "vacation", user, "--text", "over", "--until", "2020-01-01")
    late = ours.add_user("late")
    with smtplib.SMTP("127.0.0.1", ours.ports["smtp"], timeout=30) as s:
        s.sendmail(late, [user], f"From: {late}\r\nTo: {user}\r\nSubject: late\r\n\r\nhi\r\n".encode())
    wait_for(lambda: len(fetch_all(ours, user)) == 3, what="the third message")
    assert fetch_all(ours, late) == []
