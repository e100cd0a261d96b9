"""The two networks, for real: an inner dizimail, a gateway dizimail, Postfix as the internet, dnsmasq as DNS.

    inner (corp.test, poll.corp.test) ──smarthost──► gateway ──MX via dnsmasq──► Postfix (outside.test, ...)
    Postfix ──route corp.test──► gateway ──push──► inner;   Postfix ──poll.corp.test──► gateway holding box ◄── inner fetcher

Both dizimail nodes are `dizimail serve` processes made by `dizimail init --role ...`, so they can be stopped,
killed and restarted. Retry schedules are shortened through config.
"""

from __future__ import annotations

import email
import email.policy
import random
import smtplib
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dkim
import pytest

from conftest import DIZIMAIL, PASSWORD, client_tls, dizimail_cli
from helpers import fetch_all, wait_for
from peers import MX, TXT, A, DnsmasqPeer, PostfixPeer, free_dns_port, free_port
from processes import ServerProcess

CORP, POLL = "corp.test", "poll.corp.test"
OFFSETS = (25, 587, 465, 110, 995, 143, 993)
ALSO_OPENED = (4190, 443)  # managesieve and https: a node of port_base listens there too
FAST = ['retry_schedule = ["1s"]', 'poll_interval = "0.2s"', 'destination_backoff = "0.5s"',
        'warn_after = "4s"', 'connect_timeout = "5s"']


def port_base() -> int:
    for _ in range(200):
        base = random.randrange(20000, 60000, 1000)
        try:
            socks = []
            for off in (*OFFSETS, *ALSO_OPENED):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", base + off))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no free port base")


@dataclass
class Node:
    name: str
    config_file: Path
    base: int
    log: Path
    proc: ServerProcess | None = None

    @property
    def ports(self) -> dict[str, int]:
        return dict(zip(("smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps"),
                        (self.base + o for o in OFFSETS), strict=True))

    def start(self) -> None:
        self.proc = ServerProcess(self.config_file, self.log)
        self.proc.wait_ready()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc = None

    def cli(self, *args: str, check: bool = True):  # type: ignore[no-untyped-def]
        return dizimail_cli(self.config_file, *args, check=check)

    def queue_size(self) -> int:
        return int(self.cli("queue", "list").stdout.strip().splitlines()[-1].split()[0])


def init_node(tmp: Path, name: str, base: int, *args: str, delivery: list[str]) -> Node:
    data = tmp / name
    out = subprocess.run([DIZIMAIL, "init", "--data-dir", str(data), "--port-base", str(base),
                          "--hostname", f"{name}.{CORP}", *args], capture_output=True, text=True, check=True)
    assert "created" in out.stdout
    config_file = data / "dizimail.toml"
    text = config_file.read_text()
    keys = "\n".join(delivery) + "\n"
    text = text.replace("[delivery]\n", "[delivery]\n" + keys) if "[delivery]\n" in text else \
        text + "\n[delivery]\n" + keys
    config_file.write_text(text + '\n[auth]\nargon2_time_cost = 1\nargon2_memory_cost = 1024\n'
                           '\n[fetch]\ncheck_interval = "0.5s"\n')
    return Node(name, config_file, base, tmp / f"{name}.log")


@dataclass
class World:
    inner: Node
    gateway: Node
    internet: PostfixPeer
    dns: DnsmasqPeer
    users: dict[str, str]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("two-networks")
    dns_port, postfix_port = free_dns_port(), free_port()
    resolver = [f'dns_servers = ["127.0.0.1:{dns_port}"]', f"mx_port = {postfix_port}"]
    inner_base = port_base()
    gw_base = port_base()
    while gw_base == inner_base:
        gw_base = port_base()
    # Both run their queue runner as a child process (init writes delivery.runner = "process").
    gateway = init_node(tmp, "gw", gw_base, "--role", "gateway", "--domain", CORP, "--inner",
                        f"127.0.0.1:{inner_base + 25}", delivery=FAST + resolver)
    inner = init_node(tmp, "inner", inner_base, "--role", "inner", "--domain", CORP, "--smarthost",
                      f"127.0.0.1:{gw_base + 25}", delivery=FAST + resolver)
    # Poll mode for a second domain: the gateway holds poll.corp.test in a holding mailbox.
    gateway.cli("domain", "add", f"gw.{CORP}")
    gateway.cli("user", "add", f"inbound@gw.{CORP}", "--password", PASSWORD)
    gateway.cli("route", "add", POLL, f"hold:inbound@gw.{CORP}")
    inner.cli("domain", "add", POLL)
    users = {"alice": f"alice@{CORP}", "bob": f"bob@{CORP}", "polly": f"polly@{POLL}"}
    for address in users.values():
        inner.cli("user", "add", address, "--password", PASSWORD)
    inner.cli("fetch", "add", f"127.0.0.1:{gw_base + 995}", f"inbound@gw.{CORP}", "--password", PASSWORD,
              "--security", "tls", "--no-verify", "--interval", "1s")
    txt = inner.cli("dkim", "generate", CORP).stdout.split('"')[1]
    records = [MX("outside.test", "mx.outside.test"), MX("refuse.test", "mx.outside.test"),
               MX("defer.test", "mx.outside.test"), A("mx.outside.test", "127.0.0.1"),
               TXT(f"dizimail._domainkey.{CORP}", txt)]
    with DnsmasqPeer(tmp / "dns", dns_port, records) as dns, \
            PostfixPeer(tmp / "internet", postfix_port, mailboxes=["friend@outside.test"],
                        routes={CORP: gw_base + 25, POLL: gw_base + 25},
                        source_address="127.0.0.7") as internet:
        gateway.start()
        inner.start()
        try:
            yield World(inner, gateway, internet, dns, users)
        finally:
            inner.stop()
            gateway.stop()


def submit(node: Node, user: str, rcpts: list[str], body: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", node.ports["submission"], timeout=30) as s:
        s.starttls(context=client_tls())
        s.login(user, PASSWORD)
        s.sendmail(user, rcpts, body)


@dataclass
class _Ports:
    ports: dict[str, int]


def mail(node: Node, user: str) -> list[bytes]:
    return fetch_all(_Ports(node.ports), user)


def msg(subject: str, sender: str, to: str, text: str = "hello") -> bytes:
    return (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: Sat, 28 Nov 2026 12:00:00 +0000\r\n"
            f"Message-ID: <{random.getrandbits(64):x}@{CORP}>\r\n\r\n{text}\r\n").encode()


def test_inner_user_to_inner_user_stays_inside(world):
    submit(world.inner, world.users["alice"], [world.users["bob"]], msg("inside", world.users["alice"], "bob"))
    [message] = wait_for(lambda: mail(world.inner, world.users["bob"]), what="bob's copy")
    assert b"Subject: inside" in message
    assert world.gateway.queue_size() == 0


def test_inner_user_to_outside_goes_via_the_gateway_signed_with_dkim(world):
    alice = world.users["alice"]
    submit(world.inner, alice, ["friend@outside.test"], msg("out", alice, "friend@outside.test", "电厂 news"))
    [stored] = world.internet.wait_for("friend@outside.test", 1)
    assert b"Subject: out" in stored
    received = [line for line in stored.split(b"\n") if line.startswith(b"Received: from")]
    assert any(b"inner." + CORP.encode() in r or b"gw." + CORP.encode() in r for r in received)
    resolver = world.dns.resolver()

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        answer = resolver.resolve(name.decode().rstrip("."), "TXT")
        return b"".join(b"".join(r.strings) for r in answer)
    crlf = stored.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert b"DKIM-Signature:" in crlf
    assert dkim.verify(crlf, dnsfunc=dnsfunc), "the DKIM signature must verify against the published key"


def test_outside_to_inner_user_by_push(world):
    bob = world.users["bob"]
    before = len(mail(world.inner, bob))
    world.internet.send("friend@outside.test", [bob], msg("pushed", "friend@outside.test", bob))
    wait_for(lambda: len(mail(world.inner, bob)) == before + 1, what="the pushed message")
    assert b"Subject: pushed" in mail(world.inner, bob)[-1]


def test_outside_to_inner_user_by_poll(world):
    polly = world.users["polly"]
    world.internet.send("friend@outside.test", [polly], msg("polled", "friend@outside.test", polly))
    [message] = wait_for(lambda: mail(world.inner, polly), what="the polled message")
    assert b"Subject: polled" in message and message.count(b"Delivered-To:") == 1
    wait_for(lambda: not mail(world.gateway, f"inbound@gw.{CORP}"), what="the holding box to empty")


def test_outside_domain_refusing_gives_a_bilingual_dsn_to_the_inner_user(world):
    alice = world.users["alice"]
    before = len(mail(world.inner, alice))
    submit(world.inner, alice, ["someone@refuse.test"], msg("refused", alice, "someone@refuse.test"))
    wait_for(lambda: len(mail(world.inner, alice)) > before, what="the bounce")
    bounce = mail(world.inner, alice)[-1]
    parsed = email.message_from_bytes(bounce, policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/report"
    human = parsed.get_payload()[0].get_content()
    assert "无法投递" in human and "could not be delivered" in human
    assert "someone@refuse.test" in human and "550" in human


def test_temporary_failure_is_retried_and_a_delay_warning_is_sent(world):
    alice = world.users["alice"]
    before = len(mail(world.inner, alice))
    submit(world.inner, alice, ["someone@defer.test"], msg("deferred", alice, "someone@defer.test"))
    wait_for(lambda: len(mail(world.inner, alice)) > before, timeout=40, what="the delay warning")
    warning = email.message_from_bytes(mail(world.inner, alice)[-1], policy=email.policy.default)
    assert "Delayed Mail" in warning["Subject"] and "延迟" in warning["Subject"]
    report = warning.get_payload()[1].as_bytes()
    assert b"Action: delayed" in report
    listing = world.gateway.cli("queue", "list").stdout
    assert "someone@defer.test" in listing and "deferred" in listing
    assert "450" in listing
    # The operator gives up on it: `queue delete` removes it without a bounce.
    for line in listing.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 2 and cells[1] and cells[1] != "queue id":
            world.gateway.cli("queue", "delete", cells[1])
    assert world.gateway.queue_size() == 0


def test_gateway_down_outbound_waits_in_the_inner_queue_then_goes(world):
    alice = world.users["alice"]
    world.gateway.stop()
    try:
        submit(world.inner, alice, ["friend@outside.test"], msg("while gw down", alice, "friend@outside.test"))
        wait_for(lambda: "deferred" in world.inner.cli("queue", "list").stdout, what="a deferral at the inner")
        assert world.inner.queue_size() == 1
    finally:
        world.gateway.start()
    world.inner.cli("queue", "flush")
    wait_for(lambda: any(b"while gw down" in m for m in world.internet.messages("friend@outside.test")),
             what="the delayed message at Postfix")
    wait_for(lambda: world.inner.queue_size() == 0, what="the inner queue to empty")


def test_inner_down_inbound_waits_at_the_gateway_then_goes(world):
    bob = world.users["bob"]
    before = len(mail(world.inner, bob))
    world.inner.stop()
    try:
        world.internet.send("friend@outside.test", [bob], msg("while inner down", "friend@outside.test", bob))
        wait_for(lambda: world.gateway.queue_size() == 1, what="the message waiting at the gateway")
    finally:
        world.inner.start()
    world.gateway.cli("queue", "flush")
    wait_for(lambda: len(mail(world.inner, bob)) == before + 1, what="the message at the inner server")
    assert b"while inner down" in mail(world.inner, bob)[-1]
