"""SMTP over real sockets: MX, submission, SMTPS, extensions, the smuggling defence."""

from __future__ import annotations

import smtplib
import ssl

import pytest

from conftest import DOMAIN, PASSWORD, client_tls, dizimail_cli
from helpers import RawClient, body_of, fetch_all, submit


def mx(server) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30)


def test_ehlo_advertises_extensions(server):
    with mx(server) as s:
        code, text = s.ehlo("client.example.org")
        assert code == 250
        for keyword in ("PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "DSN",
                        "CHUNKING", "STARTTLS"):
            assert s.has_extn(keyword), keyword
        assert not s.has_extn("AUTH"), "AUTH must not be offered before TLS"
        s.starttls(context=client_tls())
        s.ehlo("client.example.org")
        assert "PLAIN" in s.esmtp_features["auth"] and "LOGIN" in s.esmtp_features["auth"]
        assert not s.has_extn("STARTTLS")


def test_mail_for_local_user_is_delivered_with_trace_headers(server, user):
    with mx(server) as s:
        s.ehlo("client.example.org")
        s.mail("sender@outside.example")
        s.rcpt(user)
        code, reply = s.data(b"Subject: hello\r\n\r\nline one\r\n.starts with dot\r\n..two dots\r\n")
        assert code == 250
        queue_id = reply.decode().split("queued as ")[1].split()[0]
    [message] = fetch_all(server, user)
    assert message.startswith(f"Return-Path: <sender@outside.example>\r\nDelivered-To: {user}\r\n".encode())
    assert f"id {queue_id}".encode() in message
    assert body_of(message) == b"Subject: hello\r\n\r\nline one\r\n.starts with dot\r\n..two dots\r\n"


def test_a_command_run_beside_the_server_leaves_receptions_in_progress_alone(server, user):
    """The command line opens the same data directory; only the serving node clears the spool
    (at its start), so a message being received meanwhile is still accepted whole."""
    client = RawClient(server.ports["smtp"])
    try:
        assert client.reply().startswith(b"220")
        for command, code in ((b"EHLO client.example.org", b"250"), (b"MAIL FROM:<s@outside.example>", b"250"),
                              (f"RCPT TO:<{user}>".encode(), b"250"), (b"DATA", b"354")):
            client.send(command + b"\r\n")
            assert client.reply().startswith(code)
        client.send(b"Subject: meanwhile\r\n\r\n" + b"first half\r\n" * 5000)
        dizimail_cli(server.config_file, "queue", "list")  # opens the database and blob store
        client.send(b"second half\r\n.\r\n")
        assert client.reply().startswith(b"250 "), "the reception was broken by the command"
    finally:
        client.close()
    [message] = fetch_all(server, user)
    assert message.endswith(b"first half\r\n" * 5000 + b"second half\r\n")


def test_rcpt_to_unknown_local_user_is_rejected_550(server):
    with mx(server) as s:
        s.ehlo("x")
        s.mail("a@outside.example")
        code, text = s.rcpt(f"nobody@{DOMAIN}")
        assert (code, text[:5]) == (550, b"5.1.1")


def test_relay_to_remote_domain_without_auth_is_refused_554(server):
    with mx(server) as s:
        s.ehlo("x")
        s.mail("a@outside.example")
        code, text = s.rcpt("victim@elsewhere.example")
        assert (code, text[:5]) == (554, b"5.7.1")


@pytest.mark.parametrize("trick", [
    "victim%elsewhere.example@example.test", "@example.test:victim@elsewhere.example",
    '"victim@elsewhere.example"@example.test', "victim@[192.0.2.1]",
])
def test_open_relay_tricks_are_refused(server, trick):
    with mx(server) as s:
        s.ehlo("x")
        s.mail("a@outside.example")
        code, _ = s.rcpt(trick)
        assert code in (550, 553, 554, 501), trick
    assert "victim" not in dizimail_cli(server.config_file, "queue", "list").stdout


def test_authenticated_user_relays_and_remote_recipient_is_queued(server, user):
    with submit(server, user) as s:
        assert s.sendmail(user, ["friend@remote.example", user], b"Subject: out\r\n\r\nhi\r\n") == {}
    listing = dizimail_cli(server.config_file, "queue", "list").stdout
    assert "friend@remote.example" in listing
    assert len(fetch_all(server, user)) == 1


def test_submission_requires_auth_and_tls(server, user):
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=30) as s:
        s.ehlo("x")
        code, text = s.docmd("AUTH", "PLAIN AGFAYg==")
        assert (code, text[:6]) == (538, b"5.7.11")
        code, text = s.docmd("MAIL", f"FROM:<{user}>")
        assert (code, text[:5]) == (530, b"5.7.0")


def test_wrong_password_is_535(server, user):
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=30) as s:
        s.starttls(context=client_tls())
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            s.login(user, "wrong")
        assert info.value.smtp_code == 535 and info.value.smtp_error.startswith(b"5.7.8")


def test_auth_login_mechanism(server, user):
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=30) as s:
        s.starttls(context=client_tls())
        s.ehlo()
        s.user, s.password = user, PASSWORD
        code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        assert code == 235


def test_smtps_implicit_tls(server, user):
    with smtplib.SMTP_SSL("127.0.0.1", server.ports["smtps"], context=client_tls(), timeout=30) as s:
        s.login(user, PASSWORD)
        assert s.sendmail(user, [user], b"Subject: via 465\r\n\r\nx\r\n") == {}
    assert b"ESMTPSA" in fetch_all(server, user)[0]


def test_sender_must_be_own_address_553(server, user):
    other = server.add_user("someone-else")
    with submit(server, user) as s:
        code, text = s.mail(other)
        assert (code, text[:5]) == (553, b"5.7.1")
        s.rset()
        code, _ = s.mail(user.upper())
        assert code == 250


def test_sender_may_use_own_alias(server, user):
    alias = f"alias-of-{user}"
    server.call(lambda s: s.accounts.add_alias(alias, [user]))
    with submit(server, user) as s:
        assert s.mail(alias)[0] == 250


def test_null_sender_with_auth_param_is_accepted_rfc4954(server, user):
    with submit(server, user) as s:
        assert s.docmd("MAIL", "FROM:<> AUTH=<>")[0] == 250
        assert s.rcpt(user)[0] == 250
        assert s.data(b"Subject: bounce-like\r\n\r\nx\r\n")[0] == 250
        assert s.docmd("MAIL", f"FROM:<{user}> AUTH=<{user}>")[0] == 250


def test_size_declared_over_limit_is_552(server):
    with mx(server) as s:
        s.ehlo("x")
        code, text = s.docmd("MAIL", f"FROM:<a@outside.example> SIZE={server.config.limits.max_message_size + 1}")
        assert (code, text[:5]) == (552, b"5.3.4")


def test_dsn_parameters_are_accepted(server, user):
    with mx(server) as s:
        s.ehlo("x")
        assert s.docmd("MAIL", "FROM:<a@outside.example> RET=HDRS ENVID=abc+2Bdef BODY=8BITMIME")[0] == 250
        assert s.docmd("RCPT", f"TO:<{user}> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;{user}")[0] == 250
        assert s.docmd("RCPT", f"TO:<{user}> NOTIFY=NEVER,SUCCESS")[0] == 555
        assert s.data(b"Subject: dsn\r\n\r\nx\r\n")[0] == 250


def test_bad_dsn_parameter_is_555(server, user):
    with mx(server) as s:
        s.ehlo("x")
        code, text = s.docmd("MAIL", "FROM:<a@outside.example> RET=SOMETIMES")
        assert (code, text[:5]) == (555, b"5.5.4")


def test_envid_and_orcpt_that_decode_to_line_breaks_are_refused_501(server, user):
    # xtext +0D+0A would become a forged field in the DSN that carries the value back (RFC 3464 §2.2.1).
    with mx(server) as s:
        s.ehlo("x")
        code, text = s.docmd("MAIL", "FROM:<a@outside.example> ENVID=x+0D+0AX-Injected:+20yes")
        assert (code, text[:5]) == (501, b"5.5.4")
        assert s.docmd("MAIL", "FROM:<a@outside.example> ENVID=x+09y")[0] == 501
        assert s.docmd("MAIL", "FROM:<a@outside.example> ENVID=ok+2Bfine")[0] == 250
        code, text = s.docmd("RCPT", f"TO:<{user}> ORCPT=rfc822;a+0D+0AAction:+20delivered")
        assert (code, text[:5]) == (501, b"5.5.4")
        assert s.docmd("RCPT", f"TO:<{user}> ORCPT=utf-8;a\\x{{D}}b@x.test")[0] == 501
        assert s.docmd("RCPT", f"TO:<{user}> ORCPT=rfc822;{user}")[0] == 250


def test_utf8_local_part_round_trips_byte_exact(server):
    address = server.add_user("用户")
    body = "Subject: 你好\r\nFrom: 发件人 <发件人@outside.example>\r\n\r\n中文正文\r\n".encode()
    raw = RawClient(server.ports["smtp"])
    try:
        raw.reply()
        raw.send(b"EHLO x\r\n")
        raw.reply()
        raw.send("MAIL FROM:<发件人@outside.example> SMTPUTF8\r\n".encode())
        assert raw.reply().startswith(b"250")
        raw.send(f"RCPT TO:<{address}>\r\n".encode())
        assert raw.reply().startswith(b"250")
        raw.send(b"DATA\r\n")
        assert raw.reply().startswith(b"354")
        raw.send(body + b".\r\n")
        assert raw.reply().startswith(b"250")
    finally:
        raw.close()
    [message] = fetch_all(server, address)
    assert body_of(message) == body
    assert f"Delivered-To: {address}".encode() in message


def test_utf8_address_without_smtputf8_is_refused(server):
    raw = RawClient(server.ports["smtp"])
    try:
        raw.reply()
        raw.send(b"EHLO x\r\n")
        raw.reply()
        raw.send("MAIL FROM:<发件人@outside.example>\r\n".encode())
        assert raw.reply().startswith(b"553 5.6.7")
    finally:
        raw.close()


@pytest.mark.parametrize("charset", ["gb2312", "gbk", "utf-8"])
def test_chinese_encoded_message_round_trips_byte_exact(server, user, charset):
    from email.header import Header

    subject = Header("电厂运行日报", charset).encode()
    body = ("各位同事：今天发电量正常。" * 20 + "\r\n").encode(charset)
    message = (f"Subject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset={charset}\r\n"
               "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + body
    with mx(server) as s:
        assert s.sendmail("a@outside.example", [user], message, mail_options=["BODY=8BITMIME"]) == {}
    [stored] = fetch_all(server, user)
    assert body_of(stored) == message


def test_bdat_chunking_delivers(server, user):
    raw = RawClient(server.ports["smtp"])
    try:
        raw.reply()
        raw.send(b"EHLO x\r\n")
        raw.reply()
        part1, part2 = b"Subject: chunks\r\n\r\nfirst ", b"second\r\n.\r\n"
        raw.send(f"MAIL FROM:<a@outside.example>\r\nRCPT TO:<{user}>\r\n".encode()
                 + f"BDAT {len(part1)}\r\n".encode() + part1 + f"BDAT {len(part2)} LAST\r\n".encode() + part2)
        assert raw.reply().startswith(b"250")
        assert raw.reply().startswith(b"250")
        assert raw.reply().startswith(b"250 2.0.0")
        assert raw.reply().startswith(b"250 2.0.0 Ok: queued")
    finally:
        raw.close()
    [message] = fetch_all(server, user)
    assert body_of(message) == b"Subject: chunks\r\n\r\nfirst second\r\n.\r\n"


def test_bare_lf_dot_cannot_smuggle_a_second_message_cve_2023_51764(server, user):
    victim = server.add_user("smuggle-victim")
    raw = RawClient(server.ports["smtp"])
    try:
        raw.reply()
        raw.send(b"EHLO x\r\n")
        raw.reply()
        raw.send(f"MAIL FROM:<a@outside.example>\r\nRCPT TO:<{user}>\r\nDATA\r\n".encode())
        assert raw.reply().startswith(b"250")
        assert raw.reply().startswith(b"250")
        assert raw.reply().startswith(b"354")
        for terminator in (b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n"):
            raw.send(b"Subject: outer\r\n\r\nbody" + terminator + f"MAIL FROM:<admin@{DOMAIN}>\r\nRCPT TO:<{victim}>"
                     f"\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n".encode())
        raw.send(b".\r\n")
        assert raw.reply().startswith(b"250 2.0.0")
        raw.send(b"QUIT\r\n")
        assert raw.reply().startswith(b"221")
    finally:
        raw.close()
    assert fetch_all(server, victim) == []
    [message] = fetch_all(server, user)
    assert message.count(b"Subject: smuggled") == 5


def test_commands_pipelined_after_starttls_are_discarded(server):
    raw = RawClient(server.ports["smtp"])
    try:
        raw.reply()
        raw.send(b"EHLO x\r\n")
        raw.reply()
        raw.send(b"STARTTLS\r\nRSET\r\n")
        assert raw.reply().startswith(b"220")
        tls = client_tls().wrap_socket(raw.sock, server_hostname="localhost")
        tls.sendall(b"NOOP\r\n")
        reply = tls.recv(1024)
        assert reply.startswith(b"250 2.0.0"), "the plaintext RSET must not be answered inside TLS"
        tls.close()
    except ssl.SSLError as exc:
        pytest.fail(f"TLS failed: {exc}")


def test_pipelined_transaction(server, user):
    raw = RawClient(server.ports["smtp"])
    try:
        raw.reply()
        raw.send(b"EHLO x\r\n")
        raw.reply()
        raw.send(f"MAIL FROM:<a@outside.example>\r\nRCPT TO:<{user}>\r\nRCPT TO:<no-one@{DOMAIN}>\r\n"
                 f"DATA\r\n".encode())
        assert [raw.reply()[:3] for _ in range(4)] == [b"250", b"250", b"550", b"354"]
        raw.send(b"Subject: p\r\n\r\nx\r\n.\r\nQUIT\r\n")
        assert raw.reply().startswith(b"250")
        assert raw.reply().startswith(b"221")
    finally:
        raw.close()


def test_misc_commands(server):
    with mx(server) as s:
        assert s.docmd("NOOP")[0] == 250
        assert s.docmd("VRFY", "postmaster")[0] == 252
        assert s.docmd("HELP")[0] == 214
        assert s.docmd("RCPT", "TO:<a@b.example>")[0] == 503
        s.ehlo("x")
        assert s.docmd("MAIL", "FROM:<a@outside.example>")[0] == 250
        assert s.docmd("MAIL", "FROM:<a@outside.example>")[0] == 503
        assert s.docmd("RSET")[0] == 250
        assert s.docmd("DATA")[0] == 503
        assert s.docmd("FOO")[0] == 500


def test_postmaster_without_domain_is_accepted(server):
    server.call(lambda s: s.accounts.add_alias(f"postmaster@{DOMAIN}", [server.add_user("pm")]))
    with mx(server) as s:
        s.ehlo("x")
        s.mail("a@outside.example")
        assert s.docmd("RCPT", "TO:<Postmaster>")[0] == 250
