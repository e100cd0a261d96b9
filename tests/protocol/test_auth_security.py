"""Authentication limits as an attacker meets them (issue 9 §3).

Over real sockets where loopback can show it: clients bind 127.0.0.x source addresses to be different
IPs. What loopback cannot show (IPv6 networks, a hundred thousand clients, a hundred guesses at once,
how many argon2 verifies ran) is shown on the real AccountService over a real SQLite store, with a real
argon2 PasswordHasher that counts its verifies.
"""

from __future__ import annotations

import asyncio
import imaplib
import poplib
import smtplib
import socket
import threading
import time
from collections.abc import AsyncIterator

import pytest
from argon2 import PasswordHasher

from conftest import DOMAIN, PASSWORD, client_tls, start_server
from dizimail.app.build import open_database
from dizimail.config.schema import AuthConfig, Config, ServerConfig
from dizimail.interfaces import MetaStore
from dizimail.model.errors import AuthFailed, LockedOut
from dizimail.services.accounts import AccountService, FailureTracker
from dizimail.services.lockout import MAX_TRACKED
from dizimail.storage.sqlite.meta import SqliteMetaStore

TIMEOUT = 30


# --- wire helpers -------------------------------------------------------------------------------------
def submission_from(server, source: str) -> smtplib.SMTP:
    s = smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=TIMEOUT, source_address=(source, 0))
    s.starttls(context=client_tls())
    s.ehlo()
    return s


def wrong_logins(server, source: str, user: str, count: int) -> None:
    """``count`` failed AUTH PLAIN (smtplib's login() would try LOGIN after PLAIN: two failures a call)."""
    with submission_from(server, source) as s:
        s.user, s.password = user, "not-the-password"
        for _ in range(count):
            with pytest.raises(smtplib.SMTPAuthenticationError):
                s.auth("PLAIN", s.auth_plain)


class Pop3From(poplib.POP3):
    """poplib's client, connecting from a chosen loopback address."""

    def __init__(self, port: int, source: str) -> None:
        self.source = source
        super().__init__("127.0.0.1", port, timeout=TIMEOUT)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self.source, 0))


# --- lockout over the wire ----------------------------------------------------------------------------
def test_locked_out_ip_can_still_deliver_to_port_25(tmp_path):
    srv = start_server(tmp_path, 'fail_threshold = 2\nlockout = "1h"\n')
    try:
        user = srv.add_user("rcpt")
        wrong_logins(srv, "127.0.0.1", user, 2)
        with pytest.raises(smtplib.SMTPConnectError) as refused:  # authentication is locked out ...
            smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=TIMEOUT)
        assert refused.value.smtp_code == 421
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=TIMEOUT) as s:  # ... reception is not
            assert s.sendmail("a@outside.example", [user], b"Subject: still reachable\r\n\r\nhi\r\n") == {}
            s.starttls(context=client_tls())
            s.ehlo()
            with pytest.raises(smtplib.SMTPServerDisconnected):  # AUTH on port 25 meets the lockout: 421, close
                s.login(user, PASSWORD)
        pop = Pop3From(srv.ports["pop3"], "127.0.0.2")
        pop.stls(client_tls())
        pop.user(user)
        pop.pass_(PASSWORD)
        assert pop.stat()[0] == 1
        pop.quit()
    finally:
        srv.stop()


def test_auth_in_sessions_opened_before_the_lockout_gets_each_protocols_refusal(tmp_path):
    srv = start_server(tmp_path, 'fail_threshold = 2\nlockout = "1h"\n')
    try:
        user = srv.add_user("open")
        pop = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=TIMEOUT)
        pop.stls(client_tls())
        imap = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=client_tls(), timeout=TIMEOUT)
        smtp = submission_from(srv, "127.0.0.1")
        wrong_logins(srv, "127.0.0.1", user, 2)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            smtp.login(user, PASSWORD)  # 421 4.7.0 and the server closes
        assert smtp.sock is None
        pop.user(user)
        with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\]"):
            pop.pass_(PASSWORD)
        pop.close()
        with pytest.raises(imaplib.IMAP4.abort, match="Too many failed logins"):
            imap.login(user, PASSWORD)
        imap.shutdown()
    finally:
        srv.stop()


def test_failures_for_one_account_from_many_ips_delay_its_logins_but_never_lock_the_owner_out(tmp_path):
    srv = start_server(tmp_path, 'fail_threshold = 3\nlockout = "1h"\naccount_fail_threshold = 3\n'
                                 'account_delay = "0.5s"\naccount_delay_max = "1s"\n')
    try:
        user = srv.add_user("owner")
        for stranger in ("127.0.0.2", "127.0.0.3"):  # each stranger's IP ends locked out
            wrong_logins(srv, stranger, user, 3)
        with submission_from(srv, "127.0.0.4") as s:
            started = time.monotonic()
            assert s.login(user, PASSWORD)[0] == 235  # the owner gets in ...
            assert time.monotonic() - started >= 1.0  # ... after the capped wait (6 failures: 0.5 s · 2³ → 1 s)
    finally:
        srv.stop()


# --- the service on a real store ------------------------------------------------------------------------
class CountingHasher(PasswordHasher):
    """argon2id with the test suite's cheap parameters, counting its verifies (they run in threads)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verifies = 0
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self._lock:
            self.verifies += 1
        return super().verify(hash, password)


def auth_config(**kwargs: object) -> AuthConfig:
    return AuthConfig(argon2_time_cost=1, argon2_memory_cost=1024, **kwargs)


@pytest.fixture
async def meta(tmp_path) -> AsyncIterator[MetaStore]:
    db, blobs = open_database(Config(server=ServerConfig(data_dir=tmp_path)))
    db.start()
    try:
        store = SqliteMetaStore(db, blobs)
        await store.add_domain(DOMAIN)
        yield store
    finally:
        db.close()


async def new_user(accounts: AccountService, local: str) -> str:
    address = f"{local}@{DOMAIN}"
    await accounts.add_user(address, PASSWORD)
    return address


async def test_unknown_and_suspended_accounts_cost_one_argon2_verify_like_a_wrong_password(meta):
    hasher = CountingHasher()
    accounts = AccountService(meta, auth_config(fail_threshold=100), hasher=hasher)
    known = await new_user(accounts, "known")
    suspended = await new_user(accounts, "suspended")
    await accounts.set_user_active(suspended, False)
    await accounts.add_domain("off.test")
    in_suspended_domain = "someone@off.test"
    await accounts.add_user(in_suspended_domain, PASSWORD)
    await accounts.set_domain_active("off.test", False)
    cases = [(known, "wrong"), (f"nobody@{DOMAIN}", PASSWORD), ("nobody@unknown-domain.test", PASSWORD),
             ("not an address", PASSWORD), (suspended, PASSWORD), (in_suspended_domain, PASSWORD)]
    for n, (address, password) in enumerate(cases):
        before = hasher.verifies
        with pytest.raises(AuthFailed):
            await accounts.authenticate(address, password, f"192.0.2.{n + 1}")
        assert hasher.verifies - before == 1, address


async def test_ipv6_addresses_of_one_64_share_one_failure_count(meta):
    accounts = AccountService(meta, auth_config(fail_threshold=3))
    user = await new_user(accounts, "v6")
    for host in ("1", "2", "3"):  # three addresses, one /64
        with pytest.raises(AuthFailed):
            await accounts.authenticate(user, "guess", f"2001:db8:1:2::{host}")
    assert accounts.failures.is_locked("2001:db8:1:2:ffff:ffff:ffff:ffff")
    with pytest.raises(LockedOut):
        await accounts.authenticate(user, PASSWORD, "2001:db8:1:2::99")
    assert not accounts.failures.is_locked("2001:db8:1:3::1")  # the next /64 is someone else
    assert (await accounts.authenticate(user, PASSWORD, "2001:db8:1:3::1")).address == user


async def test_ipv4_counts_per_address_and_ipv4_mapped_ipv6_is_the_same_client(meta):
    accounts = AccountService(meta, auth_config(fail_threshold=2))
    user = await new_user(accounts, "v4")
    for ip in ("192.0.2.7", "::ffff:192.0.2.7"):
        with pytest.raises(AuthFailed):
            await accounts.authenticate(user, "guess", ip)
    assert accounts.auth_refused("192.0.2.7") and accounts.auth_refused("::ffff:192.0.2.7")
    assert not accounts.auth_refused("192.0.2.8")


async def test_100_concurrent_wrong_guesses_from_one_ip_verify_at_most_threshold_passwords(meta):
    hasher = CountingHasher()
    accounts = AccountService(meta, auth_config(fail_threshold=10, account_delay=0.01, account_delay_max=0.01),
                              hasher=hasher)
    user = await new_user(accounts, "raced")
    hasher.verifies = 0
    results = await asyncio.gather(*(accounts.authenticate(user, f"guess{n}", "198.51.100.9") for n in range(100)),
                                   return_exceptions=True)
    assert hasher.verifies <= 10
    assert sum(isinstance(r, AuthFailed) for r in results) == hasher.verifies
    assert all(isinstance(r, (AuthFailed, LockedOut)) for r in results)
    assert accounts.auth_refused("198.51.100.9")


async def test_concurrent_correct_logins_from_one_ip_all_get_in(meta):
    """Slots in flight make a burst wait its turn, not fail: an office behind one NAT logs in at nine."""
    accounts = AccountService(meta, auth_config(fail_threshold=3))
    users = [await new_user(accounts, f"staff{n}") for n in range(12)]
    logged = await asyncio.gather(*(accounts.authenticate(u, PASSWORD, "203.0.113.5") for u in users))
    assert [a.address for a in logged] == users


async def test_a_success_forgives_own_typos_but_not_failures_against_other_accounts(meta):
    accounts = AccountService(meta, auth_config(fail_threshold=3))
    own = await new_user(accounts, "attacker")
    ip = "198.51.100.20"
    for _ in range(2):  # typos on one's own account are forgiven by the login that follows
        with pytest.raises(AuthFailed):
            await accounts.authenticate(own, "typo", ip)
    await accounts.authenticate(own, PASSWORD, ip)
    for victim in ("v1", "v2"):  # a spray over other accounts is not
        with pytest.raises(AuthFailed):
            await accounts.authenticate(f"{victim}@{DOMAIN}", "guess", ip)
    await accounts.authenticate(own, PASSWORD, ip)
    with pytest.raises(AuthFailed):
        await accounts.authenticate(f"v3@{DOMAIN}", "guess", ip)
    assert accounts.auth_refused(ip)


async def test_account_delay_doubles_per_failure_is_capped_and_counts_attempts_in_flight():
    tracker = FailureTracker(auth_config(account_fail_threshold=2, account_delay=1.0, account_delay_max=4.0))
    name = f"target@{DOMAIN}"
    delays = [tracker.account_delay(name)]
    for n in range(6):  # each failure from another IP: no IP is ever locked, the account never is
        attempt = await tracker.begin(f"192.0.2.{n + 1}", name)
        tracker.failed(attempt)
        tracker.end(attempt)
        delays.append(tracker.account_delay(name))
    assert delays == [0.0, 0.0, 1.0, 2.0, 4.0, 4.0, 4.0]
    other = f"other@{DOMAIN}"
    first = await tracker.begin("192.0.2.50", other)
    second = await tracker.begin("192.0.2.51", other)
    third = await tracker.begin("192.0.2.52", other)  # two in flight count like two failures
    assert (first.delay, second.delay, third.delay) == (0.0, 0.0, 1.0)
    for attempt in (first, second, third):
        tracker.end(attempt)
    assert tracker.account_delay(other) == 0.0


async def test_a_recently_verified_password_skips_the_account_delay(meta):
    accounts = AccountService(meta, auth_config(account_fail_threshold=1, account_delay=60.0,
                                                account_delay_max=60.0))
    user = await new_user(accounts, "cached")
    await accounts.authenticate(user, PASSWORD, "192.0.2.1")  # the owner's client, verified now
    with pytest.raises(AuthFailed):
        await accounts.authenticate(user, "guess", "192.0.2.2")
    assert accounts.failures.account_delay(user) == 60.0
    await asyncio.wait_for(accounts.authenticate(user, PASSWORD, "192.0.2.1"), 30)  # no 60 s wait


def test_a_flood_of_new_clients_does_not_reset_an_active_clients_count():
    tracker = FailureTracker(auth_config(fail_threshold=10))
    for _ in range(5):
        tracker.record_failure("192.0.2.1")
    for n in range(MAX_TRACKED - 1):  # the table is full ...
        tracker.record_failure(f"10.{n >> 16}.{n >> 8 & 255}.{n & 255}")
    for _ in range(4):
        tracker.record_failure("192.0.2.1")
    for n in range(1000):  # ... and overflows: the least recently seen go, not everyone's count
        tracker.record_failure(f"172.16.{n >> 8}.{n & 255}")
    assert not tracker.is_locked("192.0.2.1")
    tracker.record_failure("192.0.2.1")  # the tenth
    assert tracker.is_locked("192.0.2.1")
