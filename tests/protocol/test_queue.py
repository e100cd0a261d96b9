"""The queue runner between two real nodes: A (sender, example.test) routes other.test to B's MX port.

Everything travels over loopback sockets; the outcome of every delivery is read back over POP3 and
through the command line, as an operator would see it.
"""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import PASSWORD, ServerThread, dizimail_cli, free_ports, start_server
from helpers import add_route, fetch_all, submit, wait_for
from peers import SmtpSinkPeer

OTHER = "other.test"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, ServerThread]]:
    b = start_server(tmp_path_factory.mktemp("b"), hostname="mx.other.test")
    b.call(lambda s: s.accounts.add_domain(OTHER))
    a = start_server(tmp_path_factory.mktemp("a"), extra=(
        '\n[delivery]\nretry_schedule = ["1s"]\npoll_interval = "0.2s"\ndestination_backoff = "1s"\n'
        'idle_timeout = "30s"\n'))
    add_route(a, OTHER, f"127.0.0.1:{b.ports['smtp']}")
    yield a, b
    a.stop()
    b.stop()


def other_user(b: ServerThread, name: str) -> str:
    address = f"{name}@{OTHER}"
    b.call(lambda s: s.accounts.add_user(address, PASSWORD, name, 0))
    return address


def queue_empty(a: ServerThread) -> bool:
    return not a.call(lambda s: s.queue.list())


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def test_message_to_a_routed_domain_is_delivered_byte_exact(nodes, tmp_path: Path):
    a, b = nodes
    sender = a.add_user("q1")
    rcpt = other_user(b, "r1")
    body = b"Subject: =?utf-8?b?5Y+R55S15Y6C?=\r\nFrom: <" + sender.encode() + b">\r\n\r\nline\r\n.dot line\r\n"
    with submit(a, sender) as s:
        s.sendmail(sender, [rcpt], body)
    messages = wait_for(lambda: fetch_all(b, rcpt), what="delivery at B")
    assert messages[0].endswith(body)
    assert messages[0].count(b"Received: ") == 2  # A's and B's
    wait_for(lambda: queue_empty(a), what="A's queue to empty")


def test_connections_to_a_next_hop_are_reused(nodes):
    a, b = nodes
    sender = a.add_user("q2")
    rcpt = other_user(b, "r2")
    runner = a.node.runner
    assert runner is not None
    opened_before = runner.remote.opened
    reused_before = runner.remote.reused
    for i in range(8):
        with submit(a, sender) as s:
            s.sendmail(sender, [rcpt], f"Subject: reuse {i}\r\n\r\nx\r\n".encode())
        wait_for(lambda i=i: len(fetch_all(b, rcpt)) == i + 1, what=f"message {i}")
    assert runner.remote.reused - reused_before >= 7
    assert runner.remote.opened - opened_before <= 1


def test_unknown_remote_user_bounces_to_sender_with_a_bilingual_dsn(nodes):
    a, b = nodes
    sender = a.add_user("q3")
    with submit(a, sender) as s:
        s.sendmail(sender, [f"nobody@{OTHER}"], b"Subject: to nobody\r\nMessage-ID: <orig-1@example.test>\r\n\r\nhi\r\n")
    [bounce] = wait_for(lambda: fetch_all(a, sender), what="the bounce")
    assert bounce.startswith(b"Return-Path: <>\r\n")
    msg = parsed(bounce)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert "Undelivered Mail" in msg["Subject"] and "退信" in msg["Subject"]
    human, status, headers = msg.get_payload()
    text = human.get_content()
    assert "无法投递" in text and "could not be delivered" in text and "5.1.1" in text
    report = status.as_bytes().decode()
    assert f"Final-Recipient: rfc822; nobody@{OTHER}" in report
    assert "Action: failed" in report and "Status: 5.1.1" in report
    assert headers.get_content_type() == "text/rfc822-headers"
    assert b"<orig-1@example.test>" in headers.as_bytes()
    wait_for(lambda: queue_empty(a), what="A's queue to empty")


def test_temporary_failure_is_retried_then_delivered(nodes, tmp_path: Path):
    a, b = nodes
    sender = a.add_user("q4")
    port = free_ports(1)[0]
    add_route(a, "later.test", f"127.0.0.1:{port}")
    with submit(a, sender) as s:
        s.sendmail(sender, ["someone@later.test"], b"Subject: later\r\n\r\nwait for me\r\n")

    def deferred() -> bool:
        listing = dizimail_cli(a.config_file, "queue", "list").stdout
        return "someone@later.test" in listing and "deferred" in listing
    wait_for(deferred, what="a deferral")
    # The destination comes up: B listens on it now (route switched), and the next attempt delivers.
    b.call(lambda s: s.accounts.add_domain("later.test"))
    rcpt = "someone@later.test"
    b.call(lambda s: s.accounts.add_user(rcpt, PASSWORD, "someone", 0))
    add_route(a, "later.test", f"127.0.0.1:{b.ports['smtp']}")
    dizimail_cli(a.config_file, "queue", "flush")
    [message] = wait_for(lambda: fetch_all(b, rcpt), what="the retried delivery")
    assert message.endswith(b"wait for me\r\n")
    assert fetch_all(a, sender) == []  # no warning (warn_after is 4h) and no bounce


def test_notify_never_suppresses_the_bounce(nodes):
    a, b = nodes
    sender = a.add_user("q5")
    with submit(a, sender) as s:
        s.sendmail(sender, [f"nobody@{OTHER}"], b"Subject: quiet\r\n\r\nx\r\n", rcpt_options=["NOTIFY=NEVER"])
    wait_for(lambda: queue_empty(a), what="the failure to be recorded")
    time.sleep(0.5)
    assert fetch_all(a, sender) == []


def test_held_message_waits_until_released(nodes):
    a, b = nodes
    sender = a.add_user("q6")
    rcpt = other_user(b, "r6")
    dizimail_cli(a.config_file, "queue", "hold", "--all")  # nothing to hold yet: a no-op
    add_route(a, "held.test", f"127.0.0.1:{free_ports(1)[0]}")
    with submit(a, sender) as s:
        s.sendmail(sender, ["x@held.test", rcpt], b"Subject: hold me\r\n\r\nx\r\n")
    wait_for(lambda: fetch_all(b, rcpt), what="the reachable recipient")
    listing = wait_for(lambda: "deferred" in (out := dizimail_cli(a.config_file, "queue", "list").stdout) and out,
                       what="the deferral")
    queue_id = next(line.split("│")[1].strip() for line in str(listing).splitlines()
                    if "x@held.test" in line and line.count("│") > 2)
    assert "1 message(s) held" in dizimail_cli(a.config_file, "queue", "hold", queue_id).stdout
    shown = dizimail_cli(a.config_file, "queue", "show", queue_id).stdout
    assert "held:      yes" in shown and "x@held.test" in shown and f"{rcpt}" in shown and "delivered" in shown
    b.call(lambda s: s.accounts.add_domain("held.test"))
    b.call(lambda s: s.accounts.add_user("x@held.test", PASSWORD, "x", 0))
    add_route(a, "held.test", f"127.0.0.1:{b.ports['smtp']}")
    dizimail_cli(a.config_file, "queue", "flush")
    time.sleep(1.5)
    assert fetch_all(b, "x@held.test") == []  # held: the flush does not move it
    dizimail_cli(a.config_file, "queue", "release", queue_id)  # already due (flushed): goes at once
    wait_for(lambda: fetch_all(b, "x@held.test"), what="the released message")
    wait_for(lambda: queue_empty(a), what="the queue to empty")


def test_deleted_message_is_never_delivered_and_unknown_ids_are_errors(nodes):
    a, b = nodes
    sender = a.add_user("q7")
    add_route(a, "gone.test", f"127.0.0.1:{free_ports(1)[0]}")
    with submit(a, sender) as s:
        s.sendmail(sender, ["x@gone.test"], b"Subject: delete me\r\n\r\nx\r\n")
    listing = wait_for(lambda: "x@gone.test" in (out := dizimail_cli(a.config_file, "queue", "list").stdout) and out,
                       what="the queued message")
    queue_id = next(line.split("│")[1].strip() for line in str(listing).splitlines()
                    if "x@gone.test" in line and line.count("│") > 2)
    dizimail_cli(a.config_file, "queue", "delete", queue_id)
    assert queue_empty(a)
    missing = dizimail_cli(a.config_file, "queue", "show", queue_id, check=False)
    assert missing.returncode != 0 and "No such message" in missing.stderr


def test_concurrency_changes_on_the_running_node(nodes):
    a, _ = nodes
    out = dizimail_cli(a.config_file, "queue", "concurrency", "--total", "3", "--per-destination", "2").stdout
    assert "3 in all, 2 per destination" in out
    runner = a.node.runner
    assert runner is not None
    wait_for(lambda: (runner.remote.slots.total, runner.remote.slots.per_destination) == (3, 2),
             what="the runner to apply the new limits")
    bad = dizimail_cli(a.config_file, "queue", "concurrency", "--total", "0", check=False)
    assert bad.returncode != 0
    dizimail_cli(a.config_file, "queue", "concurrency", "--total", "20", "--per-destination", "20")


def test_a_next_hop_without_esmtp_gets_helo_and_success_is_reported_as_relayed(nodes, tmp_path):
    """smtp-sink -e announces no ESMTP: our client falls back to HELO without pipelining, and since the next
    hop cannot carry NOTIFY=SUCCESS further, we send the sender a "relayed" notice (RFC 3461 §4.1)."""
    a, _ = nodes
    sender = a.add_user("q8")
    port = free_ports(1)[0]
    with SmtpSinkPeer(tmp_path / "sink", port, extra_args=["-e"]) as sink:
        add_route(a, "plain.test", f"127.0.0.1:{port}")
        with submit(a, sender) as s:
            s.sendmail(sender, ["x@plain.test"], b"Subject: old school\r\n\r\nhello\r\n",
                       rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
        [got] = sink.wait_for(1)
        assert got.data.endswith(b"\n\nhello\n") and got.helo
        [notice] = wait_for(lambda: fetch_all(a, sender), what="the relayed notice")
    report = parsed(notice).get_payload()[1].as_bytes()
    assert b"Action: relayed" in report and b"Final-Recipient: rfc822; x@plain.test" in report
    assert "转发通知" in parsed(notice)["Subject"]


def test_tls_policy_verify_requires_a_valid_certificate_and_never_falls_back_to_plaintext(nodes, tmp_path):
    _, b = nodes
    b.call(lambda s: s.accounts.add_domain("secure.test"))
    rcpt = "r@secure.test"
    b.call(lambda s: s.accounts.add_user(rcpt, PASSWORD, "r", 0))
    sink_port = free_ports(1)[0]
    cert = b.config.path(b.config.tls.cert_file)
    c = start_server(tmp_path / "c", extra=(
        '\n[delivery]\nretry_schedule = ["1s"]\npoll_interval = "0.2s"\ndestination_backoff = "0.5s"\n'
        f'tls_ca_file = "{cert}"\ntls_policy = {{ "secure.test" = "verify", "plain.test" = "verify" }}\n'))
    try:
        add_route(c, "secure.test", f"127.0.0.1:{b.ports['smtp']}")
        add_route(c, "plain.test", f"127.0.0.1:{sink_port}")
        sender = c.add_user("v1")
        with SmtpSinkPeer(tmp_path / "sink", sink_port, extra_args=["-e"]) as sink:
            with submit(c, sender) as s:
                s.sendmail(sender, [rcpt, "x@plain.test"], b"Subject: secret\r\n\r\nfor your eyes\r\n")
            [message] = wait_for(lambda: fetch_all(b, rcpt), what="the verified delivery")
            assert b"using TLS" in message  # B's Received header records the TLS session
            listing = wait_for(lambda: "TLS required" in (out := dizimail_cli(c.config_file, "queue", "list").stdout)
                               and out, what="the plaintext-only hop to be refused")
            assert "x@plain.test" in str(listing)
            assert sink.count() == 0  # nothing went out in the clear
    finally:
        c.stop()


def test_smarthost_with_auth_over_tls_and_one_transaction_per_next_hop(nodes, tmp_path):
    """An inner-style node sends everything to a smarthost that wants AUTH (only after STARTTLS): recipients in
    two different domains share that next hop, so they travel in one transaction."""
    _, b = nodes
    relay_user = b.add_user("relayacct")
    # B is the gateway of inner.test: routed inward (here to a closed port), so C's users may send through it.
    add_route(b, "inner.test", f"127.0.0.1:{free_ports(1)[0]}")
    # Credentials go only to a verified smarthost: C trusts B's self-signed certificate as its CA.
    c = start_server(tmp_path / "c", extra=(
        f'\n[delivery]\nsmarthost = "127.0.0.1:{b.ports["submission"]}"\nsmarthost_username = "{relay_user}"\n'
        f'smarthost_password = "{PASSWORD}"\nretry_schedule = ["1s"]\npoll_interval = "0.2s"\n'
        f'tls_ca_file = "{b.config.path(b.config.tls.cert_file)}"\n'))
    try:
        c.call(lambda s: s.accounts.add_domain("inner.test"))
        sender = "s1@inner.test"
        c.call(lambda s: s.accounts.add_user(sender, PASSWORD, "s1", 0))
        with submit(c, sender) as s:
            s.sendmail(sender, ["one@first.example", "two@second.example"], b"Subject: via smarthost\r\n\r\nx\r\n")
        wait_for(lambda: queue_empty(c), what="the smarthost to take it")
        entries = wait_for(lambda: [e for e in b.call(lambda s: s.queue.list()) if e.sender == sender],
                           what="the message in the smarthost's queue")
        [entry] = entries  # one message with both recipients: one transaction
        assert sorted(r.address for r in entry.recipients) == ["one@first.example", "two@second.example"]
    finally:
        c.stop()


def test_a_backlog_drains_without_waiting_for_wake_ups_or_polls(tmp_path):
    """More messages are due than one lease takes (4 per delivery slot), and nothing new arrives to
    wake the runner: it leases again as its deliveries finish instead of waiting for the next poll
    (an hour here)."""
    node = start_server(tmp_path / "c", extra=(
        '\n[delivery]\nretry_schedule = ["1h"]\npoll_interval = "1h"\nconcurrency = 1\n'
        'destination_concurrency = 1\n'))
    try:
        sender = node.add_user("backlog")
        add_route(node, "sink.test", f"127.0.0.1:{free_ports(1)[0]}")  # nobody listens: all deferred
        with submit(node, sender) as s:
            for i in range(30):
                s.sendmail(sender, [f"r{i}@sink.test"], f"Subject: b{i}\r\n\r\nbacklog {i}\r\n".encode())
        wait_for(lambda: node.call(lambda s: s.queue.list()) and all(
            r.status == "deferred" for item in node.call(lambda s: s.queue.list()) for r in item.recipients),
            what="30 deferrals")
        port = free_ports(1)[0]
        with SmtpSinkPeer(tmp_path / "sink", port) as sink:
            add_route(node, "sink.test", f"127.0.0.1:{port}")
            node.call(lambda s: s.queue.retry(None))  # all due now, and no wake-up for the runner
            with submit(node, sender) as s:  # one new message: the one wake-up
                s.sendmail(sender, ["last@sink.test"], b"Subject: last\r\n\r\nwakes the runner\r\n")
            sink.wait_for(31)
        wait_for(lambda: not node.call(lambda s: s.queue.list()), what="the queue to empty")
    finally:
        node.stop()


def test_a_route_back_to_this_server_bounces_as_a_loop_instead_of_going_round(nodes):
    """A next hop that greets with our own name is ourselves (a route, MX or smarthost pointing back):
    the message bounces with 5.4.6 at once, as Postfix's "loops back to myself", and is never resent."""
    a, _ = nodes
    add_route(a, "loop.test", f"127.0.0.1:{a.ports['smtp']}")
    sender = a.add_user("looper")
    with submit(a, sender) as s:
        s.sendmail(sender, ["someone@loop.test"], b"Subject: round and round\r\n\r\nx\r\n")
    wait_for(lambda: queue_empty(a), what="the loop to be settled")
    [bounce] = wait_for(lambda: fetch_all(a, sender), what="the bounce")
    report = parsed(bounce)
    assert report.get_content_type() == "multipart/report"
    text = "".join(str(p.get_payload(decode=True) or b"", "utf-8", "replace") + str(p) for p in report.walk()
                   if not p.is_multipart())
    assert "loops back to myself" in text and "Status: 5.4.6" in text
    # Nothing was accepted on the way round: the only message is the bounce.
    assert a.call(lambda s: s.accounts.get_user(sender)).message_count == 1
