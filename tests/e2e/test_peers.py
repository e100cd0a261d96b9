"""The real peers of multi-node tests work: Postfix as the outside world, dnsmasq as its DNS, smtp-sink.

These check the test infrastructure itself (tests/peers.py), so that a multi-node test that fails is about
dizimail, not about its peers.
"""

from __future__ import annotations

import smtplib
from pathlib import Path

import dns.asyncresolver
import dns.message
import dns.query
import dns.resolver
import pytest

from peers import (
    MX,
    PTR,
    TXT,
    A,
    DnsmasqPeer,
    PostfixPeer,
    SmtpSinkPeer,
    dnsmasq_peer_fixture,  # noqa: F401
    free_port,
    message,
    postfix_peer_fixture,  # noqa: F401
    smtp_sink_peer_fixture,  # noqa: F401
)

pytestmark = pytest.mark.slow

DKIM_KEY = "v=DKIM1; k=rsa; p=" + "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" * 9  # > 255 characters


# --- Postfix: receiving for outside domains ---------------------------------------------------------------


def test_postfix_delivers_outside_mail_to_a_maildir_over_starttls(postfix_peer: PostfixPeer) -> None:
    data = message("carol@elsewhere.test", ["alice@outside.test"], subject="hello alice", body="line one\n")
    assert postfix_peer.send("carol@elsewhere.test", "alice@outside.test", data, starttls=True) == {}

    [stored] = postfix_peer.wait_for("alice@outside.test", 1)
    assert stored.startswith(b"Return-Path: <carol@elsewhere.test>\n")
    assert b"Delivered-To: alice@outside.test\n" in stored
    assert b"using TLSv1" in stored  # smtpd_tls_received_header: the session was encrypted
    assert b"Subject: hello alice\n" in stored and stored.endswith(b"\nline one\n")
    assert postfix_peer.messages("bob@outside.test") == []


def test_postfix_rejects_unknown_user_550_refuse_domain_5xx_defer_domain_4xx(postfix_peer: PostfixPeer) -> None:
    rcpts = ["nobody@outside.test", "x@refuse.test", "y@defer.test", "bob@outside.test"]
    refused = postfix_peer.send("carol@elsewhere.test", rcpts)

    assert refused["nobody@outside.test"][0] == 550
    assert b"User unknown" in refused["nobody@outside.test"][1]
    assert refused["x@refuse.test"][0] == 550
    assert refused["y@defer.test"][0] == 450
    assert "bob@outside.test" not in refused
    postfix_peer.wait_for("bob@outside.test", 1)
    assert "NOQUEUE: reject: RCPT" in postfix_peer.wait_log(r"reject: RCPT .* <y@defer\.test>")


def test_postfix_access_mailboxes_and_settings_change_while_running(postfix_peer: PostfixPeer) -> None:
    postfix_peer.add_mailbox("dave@outside.test")
    postfix_peer.set_recipient_access("bob@outside.test", "452 4.2.2 mailbox full")
    postfix_peer.configure({"smtpd_banner": "$myhostname ESMTP reconfigured"})

    client = smtplib.SMTP()
    assert client.connect(postfix_peer.address, postfix_peer.port) == (220, b"mx.outside.test ESMTP reconfigured")
    client.quit()

    refused = postfix_peer.send("carol@elsewhere.test", ["dave@outside.test", "bob@outside.test"])

    assert refused == {"bob@outside.test": (452, b"4.2.2 <bob@outside.test>: Recipient address rejected: "
                                                 b"mailbox full")}
    postfix_peer.wait_for("dave@outside.test", 1)


# --- Postfix: sending to our gateway ----------------------------------------------------------------------


def test_postfix_relays_organisation_mail_to_its_route(tmp_path: Path) -> None:
    with SmtpSinkPeer(tmp_path / "gateway", free_port()) as gateway, \
         PostfixPeer(tmp_path / "internet", free_port(), mailboxes=["alice@outside.test"],
                     routes={"example.test": gateway.port}) as internet:
        internet.send("alice@outside.test", ["bob@example.test"], message("alice@outside.test", ["bob@example.test"],
                                                                          subject="to the organisation"))

        [got] = gateway.wait_for(1)
        assert (got.sender, got.recipients) == ("alice@outside.test", ["bob@example.test"])
        assert got.helo == "mx.outside.test"
        assert b"Subject: to the organisation\n" in got.data
        assert "status=sent" in internet.wait_log(r"to=<bob@example\.test>.*status=")
        internet.wait_queue_empty()


def test_postfix_bounces_to_the_outside_sender_when_the_route_refuses(tmp_path: Path) -> None:
    with SmtpSinkPeer(tmp_path / "gateway", free_port(), hard=["RCPT"], hard_reply="550 5.1.1 no such user") \
            as gateway, \
         PostfixPeer(tmp_path / "internet", free_port(), mailboxes=["alice@outside.test"],
                     routes={"example.test": gateway.port}) as internet:
        internet.send("alice@outside.test", "ghost@example.test")

        [bounce] = internet.wait_for("alice@outside.test", 1)
        assert b"Return-Path: <>\n" in bounce
        assert b"550 5.1.1 no such user" in bounce
        internet.wait_queue_empty()


def test_postfix_defers_while_the_route_is_down_and_flush_delivers(tmp_path: Path) -> None:
    port = free_port()
    with PostfixPeer(tmp_path / "internet", free_port(), routes={"example.test": port}) as internet:
        internet.send("alice@outside.test", "bob@example.test")
        internet.wait_log(r"to=<bob@example\.test>.*status=deferred")
        [queued] = internet.queue()
        assert queued["queue_name"] == "deferred"
        assert "Connection refused" in queued["recipients"][0]["delay_reason"]
        assert not internet.queue_empty()

        with SmtpSinkPeer(tmp_path / "gateway", port) as gateway:
            internet.flush()
            gateway.wait_for(1)
            internet.wait_queue_empty()


def test_two_postfix_peers_run_at_once_and_talk(tmp_path: Path) -> None:
    """Instances are independent (own queue, data, config, ports): one can be the other's next hop."""
    with PostfixPeer(tmp_path / "far", free_port(), hostname="mx.far.test", domains=["far.test"],
                     mailboxes=["zoe@far.test"]) as far, \
         PostfixPeer(tmp_path / "near", free_port(), mailboxes=["alice@outside.test"],
                     routes={"far.test": f"127.0.0.1:{far.port}"}, source_address="127.0.0.7") as near:
        near.send("alice@outside.test", "zoe@far.test", starttls=True)

        [stored] = far.wait_for("zoe@far.test", 1)
        assert b"from mx.outside.test (unknown [127.0.0.7])" in stored  # smtp_bind_address; no rDNS lookup
        assert b"with ESMTPS" in stored
        assert "TLS connection established to 127.0.0.1" in near.wait_log("TLS connection established to")


# --- dnsmasq -----------------------------------------------------------------------------------------------


async def test_dnsmasq_serves_mx_a_long_txt_and_ptr(dnsmasq_peer: DnsmasqPeer) -> None:
    dnsmasq_peer.update([
        MX("example.test", "mx.example.test", 10), MX("example.test", "mx2.example.test", 20),
        A("mx.example.test", "127.0.0.1"), A("mx2.example.test", "127.0.0.2"),
        A("mx.outside.test", "127.0.0.1"), PTR("127.0.0.1", "mx.outside.test"),
        TXT("example.test", "v=spf1 ip4:127.0.0.1 -all"), TXT("sel._domainkey.example.test", DKIM_KEY),
    ])
    resolver = dnsmasq_peer.async_resolver()
    assert isinstance(resolver, dns.asyncresolver.Resolver)

    mx = await resolver.resolve("example.test", "MX")
    assert sorted((r.preference, r.exchange.to_text()) for r in mx) == [(10, "mx.example.test."),
                                                                       (20, "mx2.example.test.")]
    assert [r.address for r in await resolver.resolve("mx2.example.test", "A")] == ["127.0.0.2"]
    [spf] = await resolver.resolve("example.test", "TXT")
    assert spf.strings == (b"v=spf1 ip4:127.0.0.1 -all",)
    [dkim] = await resolver.resolve("sel._domainkey.example.test", "TXT")
    assert len(DKIM_KEY) > 255 and b"".join(dkim.strings) == DKIM_KEY.encode()
    assert max(len(s) for s in dkim.strings) == 255
    [ptr] = await resolver.resolve_address("127.0.0.1")
    assert ptr.target.to_text() == "mx.outside.test."
    with pytest.raises(dns.resolver.NXDOMAIN):
        await resolver.resolve("nosuch.test", "A")
    with pytest.raises(dns.resolver.NoAnswer):
        await resolver.resolve("mx.example.test", "MX")
    with pytest.raises(dns.resolver.NoNameservers):  # outside the test zone: REFUSED, nothing upstream
        await resolver.resolve("example.com", "A")
    assert "query[MX] example.test from 127.0.0.1" in dnsmasq_peer.log()


def test_dnsmasq_answers_over_tcp_and_takes_new_records(dnsmasq_peer: DnsmasqPeer) -> None:
    dnsmasq_peer.add(TXT("t.test", "x" * 400))
    reply = dns.query.tcp(dns.message.make_query("t.test", "TXT"), dnsmasq_peer.address, port=dnsmasq_peer.port,
                          timeout=5)
    assert [len(s) for s in reply.answer[0][0].strings] == [255, 145]

    dnsmasq_peer.add(A("new.test", "127.0.0.9"))
    assert [r.address for r in dnsmasq_peer.resolver().resolve("new.test", "A")] == ["127.0.0.9"]
    dnsmasq_peer.remove("new.test")
    with pytest.raises(dns.resolver.NXDOMAIN):
        dnsmasq_peer.resolver().resolve("new.test", "A")


# --- smtp-sink ---------------------------------------------------------------------------------------------


def test_smtp_sink_counts_and_dumps(smtp_sink_peer: SmtpSinkPeer) -> None:
    with smtplib.SMTP(smtp_sink_peer.address, smtp_sink_peer.port, timeout=10) as s:
        for i in range(3):
            s.sendmail("a@outside.test", ["b@example.test", "c@example.test"], f"Subject: {i}\r\n\r\nbody\r\n")
    got = smtp_sink_peer.wait_for(3)
    assert smtp_sink_peer.count() == 3
    assert [m.recipients for m in got] == [["b@example.test", "c@example.test"]] * 3
    assert sorted(m.data for m in got) == [b"Subject: %d\n\nbody\n" % i for i in range(3)]


def test_smtp_sink_answers_5xx_or_4xx_when_told(tmp_path: Path) -> None:
    with SmtpSinkPeer(tmp_path / "hard", free_port(), hard=["RCPT"]) as hard, \
         SmtpSinkPeer(tmp_path / "soft", free_port(), soft=["DATA"], dump=False) as soft:
        with smtplib.SMTP(hard.address, hard.port, timeout=10) as s, pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            s.sendmail("a@outside.test", ["b@example.test"], "Subject: x\r\n\r\nx\r\n")
        assert e.value.recipients["b@example.test"][0] == 500
        with smtplib.SMTP(soft.address, soft.port, timeout=10) as s, pytest.raises(smtplib.SMTPDataError) as d:
            s.sendmail("a@outside.test", ["b@example.test"], "Subject: x\r\n\r\nx\r\n")
        assert d.value.smtp_code == 450
        assert hard.count() == soft.count() == 0
