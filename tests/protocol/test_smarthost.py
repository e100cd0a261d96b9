"""Smarthost credentials go only to a server whose certificate verifies or is pinned (issue 9 §3).

The smarthost is a real dizimail node (its submission port: STARTTLS, then AUTH) with a self-signed
certificate, as a gateway installed by `dizimail init` has. The sending node keeps the password with
`dizimail secret set smarthost-password`, encrypted in its database.
"""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
from collections.abc import Iterator

import pytest

from conftest import PASSWORD, ServerThread, dizimail_cli, start_server
from helpers import add_route, fetch_all, submit, wait_for

RELAY_USER = "relay"
FAST = 'retry_schedule = ["1s"]\npoll_interval = "0.2s"\ndestination_backoff = "0.5s"\n'


@pytest.fixture(scope="module")
def smarthost(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, list[str]]]:
    node = start_server(tmp_path_factory.mktemp("smarthost"), hostname="smarthost.example.test")
    node.add_user(RELAY_USER)
    # What it relays waits in its queue, deferred: the next hop is a port held bound but not listening,
    # which no other test's server can take over while this module runs.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        add_route(node, "far.example", f"127.0.0.1:{closed.getsockname()[1]}")
        logins: list[str] = []
        assert node.node.services is not None
        node.node.services.accounts.login_hooks.append(lambda account: logins.append(account.address))
        yield node, logins
    node.stop()


def sender_node(tmp, smarthost: ServerThread, *keys: str, password: bool = True) -> ServerThread:
    host = f"127.0.0.1:{smarthost.ports['submission']}"
    node = start_server(tmp, extra=(f'\n[delivery]\nsmarthost = "{host}"\nsmarthost_username = '
                                    f'"{RELAY_USER}@example.test"\nsmarthost_tls = "may"\n{FAST}' + "".join(keys)))
    if password:
        dizimail_cli(node.config_file, "secret", "set", "smarthost-password", "--stdin", input=PASSWORD + "\n")
    return node


def send_out(node: ServerThread, subject: str) -> None:
    # The smarthost lets its relay login send as its own address (a gateway also for the inner domains).
    sender = node.add_user(RELAY_USER)
    with submit(node, sender) as s:
        s.sendmail(sender, ["someone@far.example"], f"Subject: {subject}\r\n\r\nvia the smarthost\r\n".encode())


def queued_errors(node: ServerThread) -> list[str]:
    entries = json.loads(dizimail_cli(node.config_file, "queue", "list", "--json").stdout)
    return [r["last_error"] for e in entries for r in e["recipients"] if r["last_error"]]


def relayed(smarthost: ServerThread) -> int:
    return len(smarthost.call(lambda s: s.queue.list()))


def wait_relayed(smarthost: ServerThread, before: int, node: ServerThread) -> None:
    try:
        wait_for(lambda: relayed(smarthost) > before, timeout=60, what="the message at the smarthost")
    except AssertionError as exc:
        entries = json.loads(dizimail_cli(node.config_file, "queue", "list", "--json").stdout)
        runner = node.node.runner_process
        alive = runner is not None and runner.proc is not None and runner.proc.returncode is None
        bounces = [m[-600:] for m in fetch_all(node, f"{RELAY_USER}@example.test")]
        at_smarthost = smarthost.call(lambda s: s.queue.list())
        raise AssertionError(f"{exc}; the sender's queue holds {entries}; its runner process is "
                             f"{'alive' if alive else 'not running'}, started "
                             f"{runner.starts if runner is not None else 0} times; the sender's mailbox "
                             f"holds {bounces}; the smarthost's queue {at_smarthost}") from None


def test_may_with_credentials_and_an_unverified_certificate_sends_no_credentials(smarthost, tmp_path):
    gateway, logins = smarthost
    node = sender_node(tmp_path / "a", gateway)
    try:
        before = relayed(gateway)
        send_out(node, "unverified")
        errors = wait_for(lambda: queued_errors(node), what="the deferral")
        assert "certificate not verified" in errors[0] and "credentials not sent" in errors[0], errors
        assert logins == [] and relayed(gateway) == before
    finally:
        node.stop()


def test_the_smarthost_password_is_stored_encrypted(smarthost, tmp_path):
    gateway, _ = smarthost
    node = sender_node(tmp_path / "a", gateway)
    try:
        data = node.config.server.data_dir
        assert PASSWORD.encode() not in b"".join(p.read_bytes() for p in data.glob("dizimail.db*"))
        listed = json.loads(dizimail_cli(node.config_file, "secret", "list", "--json").stdout)
        assert listed == [{"name": "smarthost-password", "set": True}]
    finally:
        node.stop()


def test_credentials_go_to_a_smarthost_whose_certificate_verifies(smarthost, tmp_path):
    gateway, logins = smarthost
    ca = gateway.config.path(gateway.config.tls.cert_file)
    node = sender_node(tmp_path / "a", gateway, f'tls_ca_file = "{ca}"\n')
    try:
        before = relayed(gateway)
        send_out(node, "verified")
        wait_relayed(gateway, before, node)
        assert f"{RELAY_USER}@example.test" in logins
    finally:
        node.stop()


def test_credentials_go_to_a_smarthost_with_the_pinned_certificate_and_not_to_another(smarthost, tmp_path):
    gateway, logins = smarthost
    der = ssl.PEM_cert_to_DER_cert(gateway.config.path(gateway.config.tls.cert_file).read_text())
    pin = hashlib.sha256(der).hexdigest()
    node = sender_node(tmp_path / "a", gateway, f'smarthost_tls_fingerprint = "{pin.upper()}"\n')
    try:
        before, logged = relayed(gateway), len(logins)
        send_out(node, "pinned")
        wait_relayed(gateway, before, node)
        assert len(logins) == logged + 1
    finally:
        node.stop()
    wrong = sender_node(tmp_path / "b", gateway, f'smarthost_tls_fingerprint = "{"0" * 64}"\n')
    try:
        before, logged = relayed(gateway), len(logins)
        send_out(wrong, "wrong pin")
        errors = wait_for(lambda: queued_errors(wrong), what="the deferral")
        assert "is not the pinned one" in errors[0] and len(logins) == logged and relayed(gateway) == before
    finally:
        wrong.stop()


def test_no_password_or_a_refused_login_defers_and_never_bounces(smarthost, tmp_path):
    """A username without a password (not set yet, or set a moment ago and not seen yet) sends no
    AUTH; a login the smarthost refuses defers even when its reply is permanent (as Postfix's
    smtp_sasl_auth_soft_bounce): a password is fixed in a minute, bounced mail is gone. The last test
    here: the refused logins count against this client at the smarthost."""
    gateway, _ = smarthost
    ca = gateway.config.path(gateway.config.tls.cert_file)
    # Never set, rather than removed: settings are cached for half a second in each process, and a
    # removal just before the message could still have sent the old password (CI saw it relayed once).
    node = sender_node(tmp_path / "a", gateway, f'tls_ca_file = "{ca}"\n', password=False)
    try:
        send_out(node, "no password")
        errors = wait_for(lambda: queued_errors(node), what="the deferral")
        assert "no password" in errors[0], errors
        dizimail_cli(node.config_file, "secret", "set", "smarthost-password", "--stdin", input="wrong\n")
        errors = wait_for(lambda: [e for e in queued_errors(node) if "AUTH refused" in e], what="the refusal")
        assert "535" in errors[0], errors
        assert fetch_all(node, f"{RELAY_USER}@example.test") == []  # no bounce
    finally:
        node.stop()
