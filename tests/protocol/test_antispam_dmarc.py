"""DKIM, ARC and DMARC at the end of DATA (issue #10): a message signed by our own DKIM (another dizimail
node, `dizimail dkim generate`, its key published in a real dnsmasq) passes DMARC although SPF fails;
a forged one is refused by the domain's p=reject; an overridden domain and p=quarantine only score."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from conftest import PASSWORD, ServerThread, dizimail_cli, start_server
from dizimail.services.msgauth import MessageAuth
from dizimail.services.resolver import make_sync_resolver
from helpers import add_route, connect, fetch_all, junk, submit, wait_for
from peers import TXT, DnsmasqPeer, free_dns_port

SENDER_DOMAIN, RECEIVER_DOMAIN = "sender.test", "second.test"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, ServerThread, DnsmasqPeer]]:
    records = [TXT(SENDER_DOMAIN, "v=spf1 -all"), TXT(f"_dmarc.{SENDER_DOMAIN}", "v=DMARC1; p=reject"),
               TXT("_dmarc.partner.test", "v=DMARC1; p=reject"), TXT("_dmarc.quar.test", "v=DMARC1; p=quarantine"),
               TXT("_dmarc.relaxed.test", "v=DMARC1; p=reject; adkim=s")]
    with DnsmasqPeer(tmp_path_factory.mktemp("dns"), free_dns_port(), records) as dns:
        receiver = start_server(tmp_path_factory.mktemp("receiver"), hostname="mx.receiver.test", extra=(
            '\n[antispam]\ndnsbl_zones = []\nexempt_networks = []\npregreet_wait = "0s"\ndmarc_override = ["partner.test"]\n'
            f'[delivery]\ndns_servers = ["{dns.nameserver}"]\nsmarthost = "127.0.0.1:{free_dns_port()}"\n'))
        sender = start_server(tmp_path_factory.mktemp("sender"), hostname="a.sender.test")
        try:
            receiver.call(lambda s: s.accounts.add_domain(RECEIVER_DOMAIN))
            sender.call(lambda s: s.accounts.add_domain(SENDER_DOMAIN))
            txt = dizimail_cli(sender.config_file, "dkim", "generate", SENDER_DOMAIN).stdout.split('"')[1]
            dns.add(TXT(f"dizimail._domainkey.{SENDER_DOMAIN}", txt))
            add_route(sender, RECEIVER_DOMAIN, f"127.0.0.1:{receiver.ports['smtp']}")
            yield sender, receiver, dns
        finally:
            sender.stop()
            receiver.stop()


def recipient(receiver: ServerThread, local: str) -> str:
    address = f"{local}@{RECEIVER_DOMAIN}"
    receiver.call(lambda s: s.accounts.add_user(address, PASSWORD))
    return address


def auth_results(message: bytes) -> str:
    head = message.split(b"\r\n\r\n", 1)[0].decode()
    match = re.search(r"^Authentication-Results: ([^\r\n]*(?:\r\n\t[^\r\n]*)*)", head, re.M)
    assert match, head
    return re.sub(r"\r\n\t", " ", match.group(1))


def send_direct(receiver: ServerThread, ip: str, sender: str, rcpt: str, subject: str) -> tuple[int, str]:
    """A message straight to the receiver's port 25 from ``ip``, From: the envelope sender; the DATA reply."""
    client, code, _ = connect(receiver, ip)
    with client:
        assert code == 220
        client.ehlo("client.example.org")
        assert client.mail(sender)[0] == 250 and client.rcpt(rcpt)[0] == 250
        code, text = client.data(f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: {subject}\r\n\r\nhello\r\n".encode())
        return code, text.decode()


def one(receiver: ServerThread, rcpt: str, subject: str) -> bytes:
    return wait_for(lambda: [m for m in fetch_all(receiver, rcpt) if f"Subject: {subject}".encode() in m],
                    what=f"the message {subject!r}")[0]  # type: ignore[index]


def test_our_own_dkim_signature_passes_dmarc_although_spf_fails(world):
    sender, receiver, _dns = world
    rcpt = recipient(receiver, "signed")
    user = f"boss@{SENDER_DOMAIN}"
    sender.call(lambda s: s.accounts.add_user(user, PASSWORD))
    with submit(sender, user) as s:
        s.sendmail(user, [rcpt], f"From: <{user}>\r\nTo: <{rcpt}>\r\nSubject: signed\r\n\r\nreal\r\n".encode())
    results = auth_results(one(receiver, rcpt, "signed"))
    assert f"spf=fail smtp.mailfrom={user}" in results, results
    assert f"dkim=pass header.d={SENDER_DOMAIN} header.s=dizimail" in results, results
    assert f"dmarc=pass header.from={SENDER_DOMAIN}" in results, results


def test_a_forged_sender_is_refused_by_p_reject(world):
    _sender, receiver, _dns = world
    rcpt = recipient(receiver, "forged")
    code, text = send_direct(receiver, "127.0.0.12", f"ceo@{SENDER_DOMAIN}", rcpt, "forged")
    assert code == 550 and "5.7.1" in text and SENDER_DOMAIN in text and "DMARC" in text, (code, text)
    assert not [m for m in fetch_all(receiver, rcpt) if b"Subject: forged" in m]


def test_override_scores_little_and_quarantine_goes_to_junk(world):
    _sender, receiver, _dns = world
    rcpt = recipient(receiver, "scored")
    assert send_direct(receiver, "127.0.0.13", "x@partner.test", rcpt, "partner")[0] == 250
    assert "dmarc=fail header.from=partner.test (p=reject)" in auth_results(one(receiver, rcpt, "partner"))
    assert send_direct(receiver, "127.0.0.13", "x@quar.test", rcpt, "quarantine")[0] == 250
    # p=quarantine 6 points + no reverse DNS 1.5 + SPF none 0.3: 7.8, the Junk folder
    (quarantined,) = junk(receiver, rcpt)
    assert b"X-Spam-Score: 7.8" in quarantined
    results = auth_results(quarantined)
    assert "dkim=none" in results and "dmarc=fail header.from=quar.test (p=quarantine)" in results, results
    assert send_direct(receiver, "127.0.0.13", "x@nodmarc.test", rcpt, "no record")[0] == 250
    assert "dmarc=none header.from=nodmarc.test" in auth_results(one(receiver, rcpt, "no record"))


def test_a_tampered_signature_fails_dkim_and_dmarc(world):
    """The signed message of the first test, altered after signing, resent from outside: dkim=fail,
    and with SPF failing too DMARC refuses it."""
    sender, receiver, dns = world
    rcpt = recipient(receiver, "tampered")
    signed = one(receiver, f"signed@{RECEIVER_DOMAIN}", "signed")
    head, _, body = signed.partition(b"\r\n\r\n")
    lines = [ln for ln in head.split(b"\r\n") if ln and not ln.startswith((b"Return-Path", b"Delivered-To"))]
    text = b"\r\n".join(lines).replace(b"Subject: signed", b"Subject: tampered")
    start = text.index(b"DKIM-Signature")  # from the signature down: what the signer sent
    message = text[start:] + b"\r\n\r\n" + body
    verifier = MessageAuth(make_sync_resolver([dns.nameserver], 5))
    assert [r.result for r in verifier.dkim(message)] == ["fail"]
    assert [r.result for r in verifier.dkim(message.replace(b"Subject: tampered", b"Subject: signed"))] == ["pass"]
    client, code, _ = connect(receiver, "127.0.0.14")
    with client:
        client.ehlo("client.example.org")
        client.mail(f"boss@{SENDER_DOMAIN}")
        client.rcpt(rcpt)
        code, text = client.data(message)
    assert code == 550 and b"DMARC" in text, (code, text)


def test_a_header_section_over_100_kib_is_not_given_to_dkimpy(world):
    """dkimpy joins a field's continuation lines with bytes += (quadratic: a 720 KB header took 2.7 s,
    16 MiB would take half an hour). A signed message whose header section is over 100 KiB (Postfix's
    header_size_limit) is taken with dkim=policy (RFC 8601: signed, not verified by local policy).
    partner.test is on the DMARC override list, so the failed DMARC only scores."""
    _sender, receiver, _dns = world
    rcpt = recipient(receiver, "bigheader")
    head = (f"From: <x@partner.test>\r\nTo: <{rcpt}>\r\nSubject: big header\r\n"
            "DKIM-Signature: v=1; a=rsa-sha256; d=partner.test; s=x; h=from; bh=AAAA; b=AAAA\r\n"
            "X-Long: a\r\n" + " b\r\n" * 40_000)
    client, code, _ = connect(receiver, "127.0.0.15")
    with client:
        client.ehlo("client.example.org")
        assert client.mail("x@partner.test")[0] == 250 and client.rcpt(rcpt)[0] == 250
        code, text = client.data((head + "\r\nhello\r\n").encode())
    assert code == 250, (code, text)
    results = auth_results(one(receiver, rcpt, "big header"))
    assert "dkim=policy" in results and "dmarc=fail header.from=partner.test" in results, results
