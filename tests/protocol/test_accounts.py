"""Account state seen over the wire: suspension, quota, lockout, the credential cache."""

from __future__ import annotations

import poplib
import smtplib
import socket
import ssl

import pytest

from conftest import DOMAIN, client_tls, dizimail_cli, start_server
from helpers import fetch_all, pop3, submit


def rcpt(server, address: str) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        s.ehlo("x")
        s.mail("a@outside.example")
        return s.rcpt(address)


def test_suspended_user_cannot_log_in_and_gets_550_521(server):
    user = server.add_user("to-suspend")
    dizimail_cli(server.config_file, "user", "suspend", user)
    code, text = rcpt(server, user)
    assert (code, text[:5]) == (550, b"5.2.1")
    with pytest.raises(poplib.error_proto):
        pop3(server, user)
    with pytest.raises(smtplib.SMTPAuthenticationError):
        submit(server, user)
    dizimail_cli(server.config_file, "user", "resume", user)
    assert rcpt(server, user)[0] == 250
    pop3(server, user).quit()


def test_suspended_domain_stops_receiving(tmp_path):
    srv = start_server(tmp_path)
    try:
        user = srv.add_user("d")
        dizimail_cli(srv.config_file, "domain", "suspend", DOMAIN)
        code, text = rcpt(srv, user)
        assert (code, text[:5]) == (550, b"5.2.1")
        with pytest.raises(poplib.error_proto):
            pop3(srv, user)
        dizimail_cli(srv.config_file, "domain", "resume", DOMAIN)
        assert rcpt(srv, user)[0] == 250
    finally:
        srv.stop()


def test_quota_full_gets_452_422(server):
    user = server.add_user("small", quota=3000)
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        assert s.sendmail("a@outside.example", [user], b"Subject: fits\r\n\r\n" + b"x" * 1000 + b"\r\n") == {}
        # declared with SIZE= (smtplib adds it): refused at RCPT
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            s.sendmail("a@outside.example", [user], b"Subject: too big\r\n\r\n" + b"x" * 2500 + b"\r\n")
        assert refused.value.recipients[user][:2] == (452, b"4.2.2 <" + user.encode() + b">: Mailbox full")
        # undeclared: refused after DATA, once the size is known
        s.ehlo("x")
        s.mail("a@outside.example")
        assert s.rcpt(user)[0] == 250
        code, text = s.data(b"Subject: too big\r\n\r\n" + b"x" * 2500 + b"\r\n")
        assert (code, text[:5]) == (452, b"4.2.2")
    assert len(fetch_all(server, user)) == 1
    listing = dizimail_cli(server.config_file, "user", "list").stdout
    line = next(row for row in listing.splitlines() if user in row)
    assert "2.9 KiB" in line and "KiB" in line.split("│")[5]


def test_password_change_invalidates_cached_login(server):
    user = server.add_user("changer")
    pop3(server, user).quit()  # now cached
    dizimail_cli(server.config_file, "user", "passwd", user, "--password", "new-password")
    with pytest.raises(poplib.error_proto):
        pop3(server, user)
    pop3(server, user, "new-password").quit()


def test_auth_failures_lock_out_the_ip_on_every_protocol(tmp_path):
    srv = start_server(tmp_path, 'fail_threshold = 3\nlockout = "1h"\n')  # appended to [auth]
    try:
        user = srv.add_user("victim")
        with smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=30) as s:
            s.starttls(context=client_tls())
            s.ehlo()
            s.user, s.password = user, "guess"
            for _ in range(2):
                with pytest.raises(smtplib.SMTPAuthenticationError) as info:
                    s.auth("PLAIN", s.auth_plain)
                assert info.value.smtp_code == 535
        pop = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=30)
        pop.stls(client_tls())
        pop.user(user)
        with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
            pop.pass_("guess")  # the third failure, on another protocol, locks the IP
        pop.close()
        with pytest.raises(smtplib.SMTPConnectError) as info:
            smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=30)
        assert info.value.smtp_code == 421
        with socket.create_connection(("127.0.0.1", srv.ports["pop3"]), timeout=30) as sock:
            assert sock.recv(1024).startswith(b"-ERR")
        # Implicit TLS: closed before any handshake is spent on a locked-out client.
        with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError, ssl.SSLError)):
            smtplib.SMTP_SSL("127.0.0.1", srv.ports["smtps"], context=client_tls(), timeout=30)
        # A lockout stops logins, not mail: the MX port still takes mail from that address.
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=30) as s:
            assert s.sendmail("a@outside.example", [user], b"Subject: still reaches the user\r\n\r\nx\r\n") == {}
        assert srv.call(lambda svc: svc.accounts.get_user(user)).message_count == 1  # POP3 is locked out
    finally:
        srv.stop()


def test_alias_to_several_users_and_a_remote_address(server):
    a, b = server.add_user("team-a"), server.add_user("team-b")
    dizimail_cli(server.config_file, "alias", "add", f"team@{DOMAIN}", a, b, "partner@remote.example")
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        assert s.sendmail("a@outside.example", [f"team@{DOMAIN}"], b"Subject: team\r\n\r\nhi all\r\n") == {}
    assert len(fetch_all(server, a)) == 1 and len(fetch_all(server, b)) == 1
    assert "partner@remote.example" in dizimail_cli(server.config_file, "queue", "list").stdout


def test_domain_alias_maps_onto_the_same_mailboxes(server):
    user = server.add_user("dual")
    dizimail_cli(server.config_file, "domain", "add", "example-alias.test", "--alias-of", DOMAIN)
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        assert s.sendmail("a@outside.example", [user.replace(DOMAIN, "example-alias.test")],
                          b"Subject: via alias domain\r\n\r\nx\r\n") == {}
        s.ehlo("x")
        s.mail("a@outside.example")
        assert s.rcpt("nobody@example-alias.test")[0] == 550
    assert len(fetch_all(server, user)) == 1


def test_one_blob_for_many_local_recipients(server):
    users = [server.add_user(f"many{i}") for i in range(5)]
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        assert s.sendmail("a@outside.example", users, b"Subject: all staff\r\n\r\n" + (b"y" * 70 + b"\r\n") * 100) == {}
    blob_dir = server.config.path(server.config.storage.blob_dir)
    big = [p for p in blob_dir.rglob("*") if p.is_file() and p.stat().st_size > 5000
           and b"all staff" in p.read_bytes()]
    assert len(big) == 1
    for u in users:
        [message] = fetch_all(server, u)
        assert f"Delivered-To: {u}".encode() in message
