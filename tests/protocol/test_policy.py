"""The policy layer over the wire (services.policy): hop count and mail loops, routing tricks on hold routes,
one quota rule everywhere, per-check actions from config, and the submitter asking the same engine."""

from __future__ import annotations

import smtplib

import pytest
from pydantic import ValidationError

from conftest import DOMAIN, PASSWORD, ServerThread, dizimail_cli, start_server
from dizimail.config.schema import PolicyConfig
from helpers import add_route, fetch_all
from imap_client import ImapLines, message

HOST = "mx.example.test"  # the test nodes' server.hostname (conftest.write_config)


def received(n: int, by: str = "relay.outside.test") -> bytes:
    return b"".join(f"Received: from h{i}.outside.test ([192.0.2.{i % 250}])\r\n\tby {by} (Postfix) with ESMTP "
                    f"id X{i}; Mon, 1 Dec 2026 10:00:00 +0000\r\n".encode() for i in range(n))


def ours(n: int) -> bytes:
    """Trace lines as this server writes them (ingest.received_header): a message that came back."""
    return b"".join(f"Received: from a.outside.test (unknown [192.0.2.9])\r\n\tby {HOST} (dizimail) with ESMTP "
                    f"id 0000{i}; Mon, 1 Dec 2026 10:00:00 +0000\r\n".encode() for i in range(n))


def data_reply(server: ServerThread, rcpt: str, body: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        s.ehlo("client.outside.test")
        s.mail("sender@outside.test")
        assert s.rcpt(rcpt)[0] == 250
        return s.data(body)


def test_a_message_past_the_hop_limit_is_refused_554_546(server: ServerThread, user: str) -> None:
    """RFC 5321 §6.3: 50 Received: fields pass (policy.max_hops), 51 are a loop; a fold or odd case
    ("received :") still counts."""
    code, _ = data_reply(server, user, received(50) + b"Subject: fifty hops\r\n\r\nbody\r\n")
    assert code == 250
    code, text = data_reply(server, user, received(50) + b"received : from late\r\n\tby x; date\r\n"
                            b"Subject: fifty-one\r\n\r\nbody\r\n")
    assert (code, text[:5]) == (554, b"5.4.6") and b"Too many hops" in text
    # Received: lines in the body are not trace fields.
    code, _ = data_reply(server, user, b"Subject: quoted\r\n\r\n" + received(60))
    assert code == 250
    assert len(fetch_all(server, user)) == 2


def test_a_message_that_passed_through_this_server_twice_is_refused_as_a_loop(server: ServerThread, user: str) -> None:
    code, _ = data_reply(server, user, ours(1) + b"Subject: back once (a list expanded it)\r\n\r\nbody\r\n")
    assert code == 250
    code, text = data_reply(server, user, ours(2) + b"Subject: round and round\r\n\r\nbody\r\n")
    assert (code, text[:5]) == (554, b"5.4.6") and b"Mail loop detected" in text
    # Another server's lines do not count as ours.
    code, _ = data_reply(server, user, received(5, by="mx.other.test") + b"Subject: x\r\n\r\nbody\r\n")
    assert code == 250


def test_bdat_is_judged_like_data(server: ServerThread, user: str) -> None:
    body = ours(2) + b"Subject: chunked loop\r\n\r\nbody\r\n"
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        s.ehlo("client.outside.test")
        s.mail("sender@outside.test")
        s.rcpt(user)
        s.send(f"BDAT {len(body)} LAST\r\n".encode() + body)
        code, text = s.getreply()
    assert (code, text[:5]) == (554, b"5.4.6")


def test_hold_routes_refuse_routing_in_the_local_part(tmp_path) -> None:
    """A poll-mode gateway accepted ``user%host@org`` into the holding box (and so for the inner server to
    route on); a route hidden in the local part is refused whichever way the domain is routed."""
    gateway = start_server(tmp_path)
    try:
        holder = gateway.add_user("inbound")
        add_route(gateway, "org.test", f"hold:{holder}")
        with smtplib.SMTP("127.0.0.1", gateway.ports["smtp"], timeout=30) as s:
            s.ehlo("client.outside.test")
            s.mail("sender@outside.test")
            for trick in ("staff%evil.test@org.test", "evil.test!staff@org.test", '"staff@evil.test"@org.test'):
                code, text = s.rcpt(trick)
                assert (code, text[:5]) == (554, b"5.7.1"), trick
                assert b"Relay access denied" in text
            assert s.rcpt("staff@org.test")[0] == 250
    finally:
        gateway.stop()


def test_a_message_exactly_filling_the_quota_is_accepted_at_rcpt_and_at_commit(server: ServerThread) -> None:
    """One quota rule: RCPT refused a declared size that exactly filled the mailbox (>=) while the commit
    would have taken it (>); now both accept it, and the next octet is refused by both."""
    user = server.add_user("exact", quota=2000)
    prefix = len(f"Return-Path: <sender@outside.test>\r\nDelivered-To: {user}\r\n")
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        s.ehlo("client.outside.test")
        s.mail("sender@outside.test", ["SIZE=2000"])
        assert s.rcpt(user)[0] == 250
        s.rset()
        s.mail("sender@outside.test", ["SIZE=2001"])
        assert s.rcpt(user)[0] == 452
        s.rset()
        # The stored size is the trace prefix + our Received: + the body; fill the mailbox to the octet.
        s.mail("sender@outside.test")
        s.rcpt(user)
        probe = b"Subject: probe\r\n\r\nx\r\n"
        assert s.data(probe)[0] == 250
    used = server.call(lambda svc: svc.accounts.get_user(user)).used_bytes
    header = used - prefix - len(probe)  # our Received: line, the same length for the next message
    rest = 2000 - used - prefix - header
    fill = b"Subject: fill\r\n\r\n" + b"y" * (rest - len(b"Subject: fill\r\n\r\n") - 2) + b"\r\n"
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        s.ehlo("client.outside.test")
        s.mail("sender@outside.test")
        s.rcpt(user)
        assert s.data(fill)[0] == 250
        s.mail("sender@outside.test")
        s.rcpt(user)
        code, text = s.data(b"Subject: one more\r\n\r\nz\r\n")
        assert (code, text[:5]) == (452, b"4.2.2")
    assert server.call(lambda svc: svc.accounts.get_user(user)).used_bytes == 2000


def test_append_and_copy_past_the_quota_get_overquota(server: ServerThread) -> None:
    user = server.add_user("appender", quota=3000)
    imap = ImapLines(server.ports["imaps"], user)
    try:
        imap.append("INBOX", message("fits", 1800))
        lines, done = imap.command(b'APPEND "Archive" () {1500+}\r\n' + message("too big", 1500))
        assert "NO [OVERQUOTA]" in done
        imap.ok("SELECT INBOX")
        _, done = imap.command('COPY 1 "Archive"')
        assert "NO [OVERQUOTA]" in done
        imap.ok('MOVE 1 "Archive"')  # within the account: nothing more is used
    finally:
        imap.close()


def test_a_check_set_to_tempfail_refuses_temporarily_and_one_set_to_log_refuses_nothing(tmp_path) -> None:
    srv = start_server(tmp_path, extra='\n[policy]\nactions = { recipient = "tempfail", quota = "log" }\n')
    try:
        small = srv.add_user("small", quota=100)
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=30) as s:
            s.ehlo("client.outside.test")
            s.mail("sender@outside.test", ["SIZE=5000"])
            code, text = s.rcpt(f"nobody@{DOMAIN}")
            assert (code, text[:5]) == (450, b"4.1.1")
            assert s.rcpt(small)[0] == 250  # the quota check only says what it would have done
    finally:
        srv.stop()


def test_policy_config_keeps_the_checks_that_prevent_an_open_relay() -> None:
    with pytest.raises(ValidationError, match="open relay"):
        PolicyConfig(actions={"relay": "log"})
    with pytest.raises(ValidationError, match="open relay"):
        PolicyConfig(checks=["recipient", "routing-trick", "auth-required"])
    with pytest.raises(ValidationError, match="unknown check"):
        PolicyConfig(checks=["recipient", "routing-trick", "auth-required", "relay", "spamassassin"])
    assert PolicyConfig(actions={"relay": "tempfail"}).actions == {"relay": "tempfail"}


def test_the_command_line_refuses_a_config_that_disables_relay_control(tmp_path, server: ServerThread) -> None:
    config = server.config_file.read_text() + '\n[policy]\nactions = { relay = "log" }\n'
    bad = tmp_path / "bad.toml"
    bad.write_text(config)
    result = dizimail_cli(bad, "domain", "list", check=False)
    assert result.returncode == 2 and "open relay" in result.stderr


def test_fetched_mail_the_policy_refuses_is_bounced_and_taken_off_the_gateway(tmp_path_factory) -> None:
    """The fetcher asks the same policy: the inner server (max_hops = 5 here) refuses a held copy that the
    gateway (50) took; the sender gets a bounce and the copy leaves the holding box."""
    gateway = start_server(tmp_path_factory.mktemp("gw"))
    inner = start_server(tmp_path_factory.mktemp("inner"),
                         extra='\n[fetch]\non_login = false\ncheck_interval = "1h"\n[policy]\nmax_hops = 5\n')
    try:
        holder = gateway.add_user("inbound")
        add_route(gateway, "org.test", f"hold:{holder}")
        inner.call(lambda s: s.accounts.add_domain("org.test"))
        staff = "staff@org.test"
        inner.call(lambda s: s.accounts.add_user(staff, PASSWORD, "staff", 0))
        sender = inner.add_user("writer")  # a local sender on the inner side receives the bounce
        with smtplib.SMTP("127.0.0.1", gateway.ports["smtp"], timeout=30) as s:
            s.sendmail(sender, [staff], received(10) + b"Subject: ten hops\r\n\r\nbody\r\n")
        dizimail_cli(inner.config_file, "fetch", "add", f"127.0.0.1:{gateway.ports['pop3']}", holder,
                     "--password", PASSWORD, "--protocol", "pop3", "--security", "starttls", "--no-verify")
        dizimail_cli(inner.config_file, "fetch", "run")
        assert fetch_all(inner, staff) == []
        [bounce] = fetch_all(inner, sender)
        assert b"multipart/report" in bounce and b"5.4.6" in bounce and b"Too many hops" in bounce
        assert fetch_all(gateway, holder) == []
    finally:
        inner.stop()
        gateway.stop()
