"""Internationalised domain names over the wire: a company on 电力.cn gets its mail however a sender spells
the domain (A-labels, as MTAs without SMTPUTF8 send it, or U-labels), and its staff log in with either."""

from __future__ import annotations

import smtplib

from conftest import PASSWORD, dizimail_cli, start_server
from helpers import add_route, fetch_all, imap_login, submit, wait_for
from peers import DnsmasqPeer, free_dns_port, smtp_sink_peer_fixture  # noqa: F401

MESSAGE = "From: bob@example.org\r\nSubject: 锅炉检修\r\n\r\n明天检修。\r\n".encode()


def test_mail_for_an_idn_domain_arrives_however_the_sender_spells_it(tmp_path):
    srv = start_server(tmp_path)
    try:
        added = dizimail_cli(srv.config_file, "domain", "add", "xn--tfr181f.cn").stdout  # as an operator may type it
        assert "domain 电力.cn added" in added, added
        listing = dizimail_cli(srv.config_file, "domain", "list").stdout
        assert "电力.cn" in listing and "xn--" not in listing, listing
        added = dizimail_cli(srv.config_file, "user", "add", "Alice@电力。cn", "--password", PASSWORD).stdout  # an IME's
        assert "user alice@电力.cn added" in added, added  # full stop
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=30) as s:
            s.ehlo("mx.example.org")
            assert s.sendmail("bob@example.org", ["alice@xn--tfr181f.cn", "ALICE@XN--TFR181F.CN"], MESSAGE) == {}
            s.mail("bob@example.org")
            assert s.rcpt("nobody@xn--tfr181f.cn")[0] == 550  # ours, and unknown: not a relay refusal
            assert s.rcpt("x@xn--fiqs8s.cn")[:2] == (554, b"5.7.1 <x@xn--fiqs8s.cn>: Relay access denied")
        messages = fetch_all(srv, "alice@xn--tfr181f.cn")  # logged in under the A-label spelling
        assert len(messages) == 1 and "锅炉检修".encode() in messages[0]
        with imap_login(srv, "alice@xn--tfr181f.cn") as imap:
            assert imap.select("INBOX", readonly=True)[1] == [b"1"]
    finally:
        srv.stop()


def test_a_route_for_an_idn_domain_takes_its_mail_in_either_spelling(tmp_path):
    """A gateway's organisation domain may be internationalised: `route add` takes it in either spelling
    (it refused U-labels before), and mail in A-labels finds the route."""
    srv = start_server(tmp_path)
    try:
        add_route(srv, "电网.cn", "127.0.0.1:9")
        assert srv.call(lambda s: s.routes.get("xn--wnyq9s.cn")).domain == "电网.cn"
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=30) as s:
            s.ehlo("mx.example.org")
            s.mail("bob@example.org")
            assert s.rcpt("staff@xn--wnyq9s.cn")[0] == 250  # relayed for the routed domain, not refused
    finally:
        srv.stop()


def test_outbound_mail_names_idn_domains_in_a_labels_and_bounces_what_needs_smtputf8(tmp_path, smtp_sink_peer):
    """Staff of 电力.cn write to 电网.cn, whose server (smtp-sink) offers no SMTPUTF8: the envelope goes in
    A-labels, which it reads; a UTF-8 local part it cannot take comes back to the sender as a 5.6.7 bounce
    instead of being sent in raw UTF-8."""
    srv = start_server(tmp_path)
    try:
        dizimail_cli(srv.config_file, "domain", "add", "电力.cn")
        srv.call(lambda s: s.accounts.add_user("alice@电力.cn", PASSWORD, "Alice", 0))
        add_route(srv, "电网.cn", f"127.0.0.1:{smtp_sink_peer.port}")
        dizimail_cli(srv.config_file, "dkim", "generate", "xn--tfr181f.cn")
        with submit(srv, "alice@xn--tfr181f.cn") as s:
            body = "From: alice@电力.cn\r\nTo: bob@电网.cn\r\nSubject: 调度\r\n\r\n请回电。\r\n".encode()
            rcpts = ["bob@电网.cn", "张三@电网.cn", "carol@xn--wnyq9s.cn"]  # the route found in either spelling
            assert s.sendmail("alice@电力.cn", rcpts, body, mail_options=["SMTPUTF8"]) == {}
            # an older client names its own domain in A-labels: still alice's address, still signed
            assert s.sendmail("alice@xn--tfr181f.cn", ["bob@xn--wnyq9s.cn"], b"From: alice@xn--tfr181f.cn\r\nSubject: plain\r\n\r\nok\r\n") == {}
        sent = smtp_sink_peer.wait_for(2)
        assert [m.sender for m in sent] == ["alice@xn--tfr181f.cn"] * 2
        assert sorted(r for m in sent for r in m.recipients) == ["bob@xn--wnyq9s.cn"] * 2 + ["carol@xn--wnyq9s.cn"]
        assert all(b"d=xn--tfr181f.cn;" in m.data for m in sent), [m.data[:400] for m in sent]
        [bounce] = wait_for(lambda: fetch_all(srv, "alice@电力.cn"), what="the bounce for 张三@电网.cn")
        assert b"5.6.7" in bounce and "张三@电网.cn".encode() in bounce, bounce
        assert smtp_sink_peer.count() == 2
    finally:
        srv.stop()


def test_a_bounce_names_an_idn_domain_that_does_not_exist_as_people_read_it(tmp_path):
    """The reason in the bounce named the domain in A-labels alone (xn--wnyq9s.cn), which the Chinese
    sender cannot read; both spellings now."""
    with DnsmasqPeer(tmp_path / "dns", free_dns_port(), local_domains=("test", "cn")) as dns:  # .cn: NXDOMAIN
        srv = start_server(tmp_path / "n", f'[delivery]\ndns_servers = ["{dns.nameserver}"]\n')
        try:
            dizimail_cli(srv.config_file, "domain", "add", "电力.cn")
            srv.call(lambda s: s.accounts.add_user("alice@电力.cn", PASSWORD, "Alice", 0))
            with submit(srv, "alice@xn--tfr181f.cn") as s:  # smtplib's AUTH takes ASCII only
                body = "From: alice@电力.cn\r\nTo: bob@电网.cn\r\nSubject: 调度\r\n\r\n请回电。\r\n".encode()
                assert s.sendmail("alice@电力.cn", ["bob@电网.cn"], body, mail_options=["SMTPUTF8"]) == {}
            [bounce] = wait_for(lambda: fetch_all(srv, "alice@电力.cn"), what="the bounce for bob@电网.cn")
            assert "5.1.2 Domain 电网.cn (xn--wnyq9s.cn) does not exist".encode() in bounce, bounce
            assert "query[MX] xn--wnyq9s.cn" in dns.log()
        finally:
            srv.stop()
