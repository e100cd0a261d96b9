"""Anti-spam layer 2, who the client says it is (issue #10): forward-confirmed reverse DNS, HELO and
SPF against a real dnsmasq, over real SMTP. By default each finding only adds to the score and is
written into the Authentication-Results header of the delivered message; set to ``reject`` a check
refuses (RFC 7372 codes)."""

from __future__ import annotations

import re
import smtplib
import socket
from collections.abc import Iterator
from typing import BinaryIO

import pytest

from conftest import ServerThread, start_server
from helpers import auth_results as full_auth_results
from helpers import connect, fetch_all, greeting, transaction
from peers import PTR, TXT, A, DnsmasqPeer, free_dns_port

GOOD, NO_PTR, LIAR = "127.0.0.7", "127.0.0.9", "127.0.0.8"


@pytest.fixture(scope="module")
def dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsmasqPeer]:
    records = [A("mail.good.test", GOOD),  # with its PTR: forward-confirmed
               PTR(LIAR, "liar.test"), A("liar.test", "192.0.2.1"),  # a PTR name that leads elsewhere
               TXT("good.test", "v=spf1 ip4:127.0.0.7 -all"), TXT("soft.test", "v=spf1 ~all"),
               TXT("broken.test", "v=spf1 include: -all"), TXT("strict.test", "v=spf1 -all")]
    with DnsmasqPeer(tmp_path_factory.mktemp("dns"), free_dns_port(), records) as peer:
        yield peer


def node_with(tmp, dns: DnsmasqPeer, policy: str = "", pregreet: str = "0s") -> ServerThread:
    return start_server(tmp, extra=(
        f'\n[antispam]\ndnsbl_zones = []\nexempt_networks = []\npregreet_wait = "{pregreet}"\n' + policy +
        f'[delivery]\ndns_servers = ["{dns.nameserver}"]\nsmarthost = "127.0.0.1:{free_dns_port()}"\n'))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, dns: DnsmasqPeer) -> Iterator[ServerThread]:
    srv = node_with(tmp_path_factory.mktemp("scoring"), dns)
    yield srv
    srv.stop()


def delivered(node: ServerThread, user: str, subject: str) -> bytes:
    found = [m for m in fetch_all(node, user) if re.search(rf"^Subject: (\[SPAM\] )?{subject}\r$".encode(), m, re.M)]
    assert len(found) == 1, found
    return found[0]


def auth_results(message: bytes) -> str:
    """The Authentication-Results header unfolded, up to the message-content results (dkim, arc, dmarc:
    test_antispam_dmarc's)."""
    return _auth_results(message).partition("; dkim=")[0]


def _auth_results(message: bytes) -> str:
    return full_auth_results(message)


def test_a_confirmed_client_with_spf_pass(node):
    user = node.add_user("good")
    assert transaction(node, GOOD, "a@good.test", user, helo="mail.good.test", subject="good")[2].startswith("250")
    message = delivered(node, user, "good")
    assert auth_results(message) == ("mx.example.test; iprev=pass policy.iprev=127.0.0.7 (mail.good.test); "
                                     "spf=pass smtp.mailfrom=a@good.test")
    assert b"Received: from mail.good.test (mail.good.test [127.0.0.7])" in message


def test_failures_score_and_are_reported_but_the_mail_is_taken(node):
    user = node.add_user("scored")
    assert transaction(node, NO_PTR, "b@good.test", user, helo="localhost", subject="no ptr")[2].startswith("250")
    message = delivered(node, user, "no ptr")
    results = auth_results(message)
    # iprev 1.5 + a HELO that is no FQDN 1.0 + SPF fail 3.0: 5.5 points, the subject is tagged
    assert b"X-Spam-Score: 5.5" in message and b"Subject: [SPAM] no ptr" in message, message
    assert results == "mx.example.test; iprev=fail policy.iprev=127.0.0.9; spf=fail smtp.mailfrom=b@good.test"
    assert transaction(node, LIAR, "c@soft.test", user, subject="liar")[2].startswith("250")
    message = delivered(node, user, "liar")
    assert auth_results(message) == ("mx.example.test; iprev=fail policy.iprev=127.0.0.8 (liar.test); "
                                     "spf=softfail smtp.mailfrom=c@soft.test")
    assert b"(unknown [127.0.0.8])" in message  # an unconfirmed name is not the client's
    assert transaction(node, GOOD, "d@broken.test", user, subject="permerror")[2].startswith("250")
    assert "spf=permerror smtp.mailfrom=d@broken.test" in auth_results(delivered(node, user, "permerror"))


def test_the_null_sender_is_checked_by_its_helo_name(node):
    user = node.add_user("bounces")
    assert transaction(node, GOOD, "", user, helo="good.test", subject="dsn")[2].startswith("250")
    assert "spf=pass smtp.helo=good.test" in auth_results(delivered(node, user, "dsn"))


def test_checks_set_to_reject_refuse_with_rfc7372_codes(tmp_path, dns):
    srv = node_with(tmp_path / "strict", dns, '[policy]\nactions = { iprev = "reject", spf = "reject", '
                                              'helo = "reject" }\n')
    try:
        user = srv.add_user("strict")
        code, text = greeting(srv, NO_PTR)
        assert code == 554 and "5.7.25" in text and "reverse DNS" in text, text
        code, mail, last = transaction(srv, GOOD, "x@good.test", user, helo="mail.good.test", subject="ok")
        assert last.startswith("250"), last
        _, mail, last = transaction(srv, GOOD, "x@soft.test", user, helo="mail.good.test")
        assert mail == 250  # softfail: points, never a refusal
        _, mail, last = transaction(srv, GOOD, "x@strict.test", user, helo="mail.good.test")
        assert mail == 550 and "5.7.23" in last and "<x@strict.test>" in last, last
        _, mail, last = transaction(srv, GOOD, "x@broken.test", user, helo="mail.good.test")
        assert mail == 550 and "5.7.24" in last, last
        client, _code, _text = connect(srv, GOOD)
        with client:
            code, text = client.ehlo("mx.example.test")  # claims to be this server
            assert code == 550 and b"5.7.1" in text, text
            assert client.ehlo("mail.good.test")[0] == 250
    finally:
        srv.stop()


def talk(node: ServerThread, ip: str, early: bool) -> tuple[list[bytes], socket.socket, BinaryIO]:
    """Connect from ``ip``; with ``early``, send EHLO at once, before reading anything. The greeting's lines."""
    sock = socket.create_connection(("127.0.0.1", node.ports["smtp"]), timeout=15, source_address=(ip, 0))
    if early:
        sock.sendall(b"EHLO client.example.org\r\n")
    reader = sock.makefile("rb")
    lines = [reader.readline()]
    while lines[-1][3:4] == b"-":
        lines.append(reader.readline())
    return lines, sock, reader


def test_early_talkers_score_and_patient_clients_are_tested_once_a_day(tmp_path, dns):
    """postscreen's pregreet test: the greeting's first line goes out alone; a client that talks before
    its last line scores pregreet.fail; one that waited is greeted at once next time."""
    srv = node_with(tmp_path / "n", dns, pregreet="1s")
    try:
        user = srv.add_user("pg1")
        lines, sock, reader = talk(srv, "127.0.0.40", early=True)
        sock.close()
        assert lines[0].startswith(b"220-mx.example.test") and lines[-1].startswith(b"220 "), lines
        lines, sock, reader = talk(srv, "127.0.0.40", early=False)
        sock.close()
        assert lines[0].startswith(b"220-"), lines  # an early talker is tested again at its next connection
        lines, sock, reader = talk(srv, "127.0.0.41", early=False)
        sock.close()
        assert lines[0].startswith(b"220-"), lines  # tested: held
        lines, sock, reader = talk(srv, "127.0.0.41", early=False)
        sock.close()
        assert len(lines) == 1 and lines[0].startswith(b"220 mx.example.test ESMTP"), lines  # passed: not again

        sock = socket.create_connection(("127.0.0.1", srv.ports["smtp"]), timeout=15, source_address=("127.0.0.42", 0))
        sock.sendall(b"EHLO mail.example.org\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<" + user.encode() +
                     b">\r\nDATA\r\n")  # a bulk mailer's pipeline, before any greeting
        reader = sock.makefile("rb")
        replies = b"".join(reader.readline() for _ in range(2 + 1 + 9 + 3))
        assert b"354 " in replies, replies  # taken, scored
        sock.sendall(b"Subject: early bird\r\n\r\nhi\r\n.\r\nQUIT\r\n")
        assert b"250 " in reader.readline()
        sock.close()
        head = delivered(srv, user, "early bird").split(b"\r\n\r\n")[0]
        assert b"pregreet=fail +4" in head, head
    finally:
        srv.stop()


def test_an_early_talker_is_refused_when_pregreet_is_set_to_reject(tmp_path, dns):
    srv = start_server(tmp_path / "n", extra=(
        '\n[antispam]\ndnsbl_zones = []\nexempt_networks = []\npregreet_wait = "1s"\n'
        '[policy]\nactions = { pregreet = "reject" }\n'
        f'[delivery]\ndns_servers = ["{dns.nameserver}"]\nsmarthost = "127.0.0.1:{free_dns_port()}"\n'))
    try:
        lines, sock, reader = talk(srv, "127.0.0.43", early=True)
        reply = reader.readline()
        assert lines[-1].startswith(b"220 ") and reply.startswith(b"554 5.5.1 Protocol error"), (lines, reply)
        assert sock.recv(100) == b""  # and disconnected
        sock.close()
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], source_address=("127.0.0.44", 0)) as s:
            assert s.ehlo("mail.example.org")[0] == 250  # a patient client is served
    finally:
        srv.stop()
