"""Poll mode between two real nodes: a gateway holds the organisation's mail, the inner node fetches it.

The gateway keeps one copy per recipient in a holding mailbox (``route add DOMAIN hold:USER``); the inner
node's fetcher logs in over POP3 or IMAP with STARTTLS, delivers each copy through ingest and deletes it
on the gateway only after the commit, recording the remote UID in the same transaction.
"""

from __future__ import annotations

import smtplib
import stat
import time
import uuid
from collections.abc import Iterator

import pytest

from conftest import PASSWORD, ServerThread, dizimail_cli, start_server
from dizimail.model.outbound import FetchAccount
from helpers import add_route, fetch_all, pop3

ORG = "org.test"
HOLDER = "inbound@example.test"  # a user on the gateway (its own demo domain)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, ServerThread]]:
    gateway = start_server(tmp_path_factory.mktemp("gw"))
    gateway.call(lambda s: s.accounts.add_user(HOLDER, PASSWORD, "holding", 0))
    add_route(gateway, ORG, f"hold:{HOLDER}")
    # Only the command line fetches here; the timer and the login trigger have their own test.
    inner = start_server(tmp_path_factory.mktemp("inner"), extra='\n[fetch]\non_login = false\ncheck_interval = "1h"\n')
    inner.call(lambda s: s.accounts.add_domain(ORG))
    yield gateway, inner
    inner.stop()
    gateway.stop()


def send_to_gateway(gateway: ServerThread, rcpts: list[str], body: bytes, sender: str = "friend@outside.test") -> None:
    with smtplib.SMTP("127.0.0.1", gateway.ports["smtp"], timeout=30) as s:
        s.sendmail(sender, rcpts, body)


def add_org_user(inner: ServerThread, name: str) -> str:
    address = f"{name}@{ORG}"
    inner.call(lambda s: s.accounts.add_user(address, PASSWORD, name, 0))
    return address


@pytest.mark.parametrize("protocol", ["pop3", "imap"])
def test_held_mail_is_fetched_once_into_each_recipients_mailbox(pair, protocol):
    gateway, inner = pair
    one, two = add_org_user(inner, f"a{protocol}"), add_org_user(inner, f"b{protocol}")
    port = gateway.ports[protocol]
    out = dizimail_cli(inner.config_file, "fetch", "add", f"127.0.0.1:{port}", HOLDER, "--password", PASSWORD,
                       "--protocol", protocol, "--security", "starttls", "--no-verify", "--interval", "1h")
    fetch_id = out.stdout.split()[1]
    body = b"Subject: =?utf-8?b?6L2u6K+i?=\r\nFrom: friend@outside.test\r\n\r\npolled " + protocol.encode() + b"\r\n"
    send_to_gateway(gateway, [one, two], body)
    assert len(fetch_all(gateway, HOLDER)) == 2  # one held copy per recipient
    assert "2 message(s) fetched" in dizimail_cli(inner.config_file, "fetch", "run").stdout
    for rcpt in (one, two):
        [message] = fetch_all(inner, rcpt)
        assert message.startswith(f"Return-Path: <friend@outside.test>\r\nDelivered-To: {rcpt}\r\n".encode())
        assert message.endswith(body)
        assert message.count(b"Delivered-To:") == 1  # the gateway's trace line became the envelope
    assert fetch_all(gateway, HOLDER) == []  # removed on the gateway after the commit
    assert "0 message(s) fetched" in dizimail_cli(inner.config_file, "fetch", "run").stdout
    assert len(fetch_all(inner, one)) == 1
    dizimail_cli(inner.config_file, "fetch", "remove", fetch_id)


def test_a_fetched_message_committed_but_not_yet_deleted_is_not_delivered_twice(pair):
    """The crash window: our commit happened, the delete on the gateway did not. With --keep the remote copy
    stays, exactly like after such a crash; the UID recorded with the commit prevents a second delivery."""
    gateway, inner = pair
    rcpt = add_org_user(inner, "keeper")
    out = dizimail_cli(inner.config_file, "fetch", "add", f"127.0.0.1:{gateway.ports['pop3']}", HOLDER,
                       "--password", PASSWORD, "--security", "starttls", "--no-verify", "--keep")
    fetch_id = out.stdout.split()[1]
    send_to_gateway(gateway, [rcpt], b"Subject: once\r\n\r\nonly once\r\n")
    dizimail_cli(inner.config_file, "fetch", "run")
    dizimail_cli(inner.config_file, "fetch", "run")
    assert len(fetch_all(inner, rcpt)) == 1
    assert len(fetch_all(gateway, HOLDER)) == 1  # kept on the gateway
    dizimail_cli(inner.config_file, "fetch", "remove", fetch_id)
    box = pop3(gateway, HOLDER)
    box.dele(1)
    box.quit()


def test_held_mail_for_an_unknown_inner_user_goes_to_the_postmaster_not_nowhere(pair):
    gateway, inner = pair
    postmaster = inner.add_user("pm")
    inner.call(lambda s: s.accounts.add_alias("postmaster@example.test", [postmaster]))
    out = dizimail_cli(inner.config_file, "fetch", "add", f"127.0.0.1:{gateway.ports['pop3s']}", HOLDER,
                       "--password", PASSWORD, "--no-verify")
    send_to_gateway(gateway, [f"nobody@{ORG}"], b"Subject: lost?\r\n\r\nfind me\r\n")
    dizimail_cli(inner.config_file, "fetch", "run")
    [message] = fetch_all(inner, postmaster)
    assert message.endswith(b"find me\r\n")
    assert fetch_all(gateway, HOLDER) == []
    dizimail_cli(inner.config_file, "fetch", "remove", out.stdout.split()[1])


def test_the_timer_and_a_user_login_fetch_without_the_command_line(pair, tmp_path):
    gateway, _ = pair
    inner = start_server(tmp_path / "inner2", extra='\n[fetch]\non_login = true\ncheck_interval = "0.2s"\n')
    try:
        inner.call(lambda s: s.accounts.add_domain(ORG))
        rcpt = add_org_user(inner, "timed")
        dizimail_cli(inner.config_file, "fetch", "add", f"127.0.0.1:{gateway.ports['imaps']}", HOLDER,
                     "--password", PASSWORD, "--protocol", "imap", "--security", "tls", "--no-verify",
                     "--interval", "1s")
        send_to_gateway(gateway, [rcpt], b"Subject: timer\r\n\r\nby the clock\r\n")
        deadline = time.monotonic() + 20
        while not fetch_all(inner, rcpt) and time.monotonic() < deadline:  # each login also triggers a fetch
            time.sleep(0.2)
        [message] = fetch_all(inner, rcpt)
        assert message.endswith(b"by the clock\r\n")
    finally:
        inner.stop()


@pytest.mark.parametrize("protocol", ["pop3", "imap"])
def test_a_message_over_the_size_limit_stays_on_the_server_and_is_reported(pair, tmp_path, protocol):
    gateway, _ = pair
    inner = start_server(tmp_path / "small", extra=('\n[limits]\nmax_message_size = "10KB"\n'
                                                   '\n[fetch]\non_login = false\ncheck_interval = "1h"\n'))
    try:
        inner.call(lambda s: s.accounts.add_domain(ORG))
        rcpt = add_org_user(inner, "small")
        dizimail_cli(inner.config_file, "fetch", "add", f"127.0.0.1:{gateway.ports[protocol]}", HOLDER,
                     "--password", PASSWORD, "--protocol", protocol, "--security", "starttls", "--no-verify")
        send_to_gateway(gateway, [rcpt], b"Subject: big\r\n\r\n" + (b"y" * 76 + b"\r\n") * 300)
        send_to_gateway(gateway, [rcpt], b"Subject: small\r\n\r\nfits\r\n")
        assert "1 message(s) fetched" in dizimail_cli(inner.config_file, "fetch", "run").stdout
        [message] = fetch_all(inner, rcpt)
        assert message.endswith(b"fits\r\n")
        assert "larger than 10240 octets left on the server" in dizimail_cli(inner.config_file, "fetch", "list").stdout
        [left] = fetch_all(gateway, HOLDER)
        assert b"Subject: big" in left
    finally:
        inner.stop()
    box = pop3(gateway, HOLDER)
    box.dele(1)
    box.quit()


def test_an_external_account_is_fetched_into_its_owner_whose_display_name_differs(pair):
    gateway, inner = pair
    owner = f"owner@{ORG}"
    inner.call(lambda s: s.accounts.add_user(owner, PASSWORD, "Owner Display Name", 0))
    external = gateway.add_user("external")
    send_to_gateway(gateway, [external], b"Subject: elsewhere\r\n\r\nfrom my other mailbox\r\n")
    out = dizimail_cli(inner.config_file, "fetch", "add", f"127.0.0.1:{gateway.ports['pop3']}", external,
                       "--password", PASSWORD, "--security", "starttls", "--no-verify", "--to", owner)
    assert "1 message(s) fetched" in dizimail_cli(inner.config_file, "fetch", "run").stdout
    [message] = fetch_all(inner, owner)
    assert message.endswith(b"from my other mailbox\r\n")
    dizimail_cli(inner.config_file, "fetch", "remove", out.stdout.split()[1])


def database_bytes(node: ServerThread) -> bytes:
    data = node.config.server.data_dir
    return b"".join(p.read_bytes() for p in sorted(data.glob("dizimail.db*")))


def test_fetch_passwords_are_stored_encrypted_and_fetching_still_works(pair):
    gateway, inner = pair
    secret = f"fetch-secret-{uuid.uuid4().hex}"
    remote = gateway.add_user("sealed", password=secret)
    owner = add_org_user(inner, "sealedowner")
    send_to_gateway(gateway, [remote], b"Subject: sealed\r\n\r\nfetched with a sealed password\r\n")
    out = dizimail_cli(inner.config_file, "fetch", "add", f"127.0.0.1:{gateway.ports['pop3']}", remote,
                       "--password", secret, "--security", "starttls", "--no-verify", "--to", owner)
    assert "1 message(s) fetched" in dizimail_cli(inner.config_file, "fetch", "run").stdout
    assert fetch_all(inner, owner)[0].endswith(b"fetched with a sealed password\r\n")
    assert secret.encode() not in database_bytes(inner)
    key = inner.config.server.data_dir / "secrets" / "master.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and secret.encode() not in key.read_bytes()
    dizimail_cli(inner.config_file, "fetch", "remove", out.stdout.split()[1])


def test_a_plaintext_fetch_password_from_before_works_and_is_sealed_at_the_next_start(pair, tmp_path):
    gateway, _ = pair
    secret = f"old-plaintext-{uuid.uuid4().hex}"
    remote = gateway.add_user("oldstyle", password=secret)
    node = start_server(tmp_path / "old", extra='\n[fetch]\non_login = false\ncheck_interval = "1h"\n')
    try:
        node.call(lambda s: s.accounts.add_domain(ORG))
        owner = add_org_user(node, "oldowner")
        # As an older version stored it: the password in plaintext, straight into the table.
        node.call_stores(lambda s: s.fetch.add_fetch_account(FetchAccount(
            0, owner, "account", "pop3", "127.0.0.1", gateway.ports["pop3"], "starttls", False, remote, secret,
            3600.0, False)))
        send_to_gateway(gateway, [remote], b"Subject: one\r\n\r\nbefore the restart\r\n")
        assert "1 message(s) fetched" in dizimail_cli(node.config_file, "fetch", "run").stdout
    finally:
        node.stop()
    again = ServerThread(node.config_file, node.ports)
    again.start()
    try:
        [acc] = again.call_stores(lambda s: s.fetch.list_fetch_accounts())
        assert acc.password.startswith("fernet:") and secret not in acc.password
        send_to_gateway(gateway, [remote], b"Subject: two\r\n\r\nafter the restart\r\n")
        assert "1 message(s) fetched" in dizimail_cli(again.config_file, "fetch", "run").stdout
        assert len(fetch_all(again, owner)) == 2
    finally:
        again.stop()


@pytest.mark.parametrize("protocol", ["pop3", "imap"])
def test_a_refused_fetch_login_closes_its_connection(pair, protocol):
    """A wrong password (or a mailbox in use) ends the fetcher's session: the remote server sees the
    connection closed, not left open until the garbage collector finds it (the exception, kept here,
    still refers to the client)."""
    import asyncio

    from dizimail.clients.fetch import StdlibMailboxClient
    from dizimail.interfaces.remote import FetchFailed

    gateway, _inner = pair
    remote = gateway.add_user(f"refused-{protocol}")
    listener = next(x for x in gateway.node.listeners if x.port == gateway.ports[protocol])
    account = FetchAccount(0, None, "account", protocol, "127.0.0.1", gateway.ports[protocol], "starttls", False,
                           remote, "not-the-password", 60.0, True)
    with pytest.raises(FetchFailed) as refused:
        asyncio.run(StdlibMailboxClient().open(account, 30))
    assert "uthentication" in str(refused.value) or "ERR" in str(refused.value), refused.value
    deadline = time.monotonic() + 10
    while listener.active and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listener.active == 0, f"{listener.active} connection(s) still open on the remote server"
