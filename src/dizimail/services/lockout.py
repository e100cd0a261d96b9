"""Limits on failed logins, shared by every protocol of this process (DESIGN.md §5: auth-failure limits).

Each rule closes a way around the first design, which counted per exact IP address:

- A *client* is an IPv4 address or an IPv6 /64. One host is routinely given a whole /64, so counting
  per IPv6 address handed an attacker 2^64 fresh counters.
- Past ``fail_threshold`` failures within ``fail_window`` the client may not authenticate for ``lockout``.
  The lockout is for authentication only: port 25 keeps taking mail from it.
- An attempt holds a slot of its client from before its password hash is awaited until it ends, and
  slots in flight count against the threshold: an attempt that could exceed it waits for a slot. So at
  most ``fail_threshold`` guesses from one client are ever verified, however many arrive at once.
- An *account* that collected ``account_fail_threshold`` failures (from anywhere, attempts in flight
  included) is never locked, so strangers cannot lock its owner out; each further attempt for it waits
  ``account_delay``, doubling per failure up to ``account_delay_max``, before its password is verified.
  Names are counted whether or not the account exists, so the delay does not reveal which ones do.
  A success does not reset that count (the owner logging in must not buy an attacker fresh quick
  guesses); the owner's clients that logged in lately skip the wait through the credential cache.
- A success forgives the client's failures for the same account (the owner's own typos) and its
  malformed exchanges, never those against other accounts: an attacker's own account must not reset
  the count of a password spray.
- Both tables are bounded and evict the least recently used entry (the first design cleared every
  count once 100,000 IPs were tracked). Lockouts live in their own table, which only clients that
  failed ``fail_threshold`` times can fill, so a flood of one-failure clients never lifts a lockout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from dizimail.config.schema import AuthConfig
from dizimail.model.errors import LockedOut
from dizimail.services.limits import client_key

log = logging.getLogger("dizimail.auth")

MAX_TRACKED = 100_000  # entries per table (clients, lockouts, accounts)
_DOUBLINGS = 30  # beyond this the delay is at any sane cap; keeps 2**n finite


@dataclass(eq=False)
class _Client:
    failures: deque[tuple[float, str | None]] = field(default_factory=deque)  # (when, account name or None)
    in_flight: int = 0
    waiters: list[asyncio.Future[None]] = field(default_factory=list)


@dataclass(eq=False)
class _Account:
    failures: deque[float]
    in_flight: int = 0


@dataclass(frozen=True, eq=False)
class Attempt:
    """One login attempt, holding a slot of its client and of its account until :meth:`FailureTracker.end`."""

    client_key: str
    name: str
    delay: float  # seconds to wait before verifying the password
    _client: _Client
    _account: _Account


class FailureTracker:
    def __init__(self, config: AuthConfig) -> None:
        self._config = config
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self._locked: OrderedDict[str, float] = OrderedDict()  # client → locked until (monotonic)
        self._accounts: OrderedDict[str, _Account] = OrderedDict()

    # --- questions ----------------------------------------------------------------
    def is_locked(self, ip: str) -> bool:
        """Whether the client at ``ip`` is locked out of authentication now."""
        key = client_key(ip)
        until = self._locked.get(key)
        if until is None:
            return False
        if until > time.monotonic():
            self._locked.move_to_end(key)
            return True
        del self._locked[key]
        return False

    def check(self, ip: str) -> None:
        """Raise LockedOut when the client at ``ip`` is locked out."""
        if self.is_locked(ip):
            raise LockedOut(f"{client_key(ip)} locked out")

    def account_delay(self, name: str) -> float:
        """Seconds the next attempt for account ``name`` would wait before its password is verified."""
        account = self._accounts.get(name)
        if account is None:
            return 0.0
        return self._delay(self._account_failures(account) + account.in_flight)

    # --- one attempt ------------------------------------------------------------------
    async def begin(self, ip: str, name: str) -> Attempt:
        """Take a slot for a login as ``name`` from ``ip``; waits while the client's slots are all taken.

        Raises LockedOut when the client is locked out (also while waiting). Every Attempt returned
        must be passed to :meth:`end`, whatever happens to it.
        """
        key = client_key(ip)
        while True:
            self.check(ip)
            client = self._client(key)
            if self._client_failures(client) + client.in_flight < self._config.fail_threshold:
                break
            waiter = asyncio.get_running_loop().create_future()
            client.waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in client.waiters:
                    client.waiters.remove(waiter)
        client.in_flight += 1
        account = self._account(name)
        delay = self._delay(self._account_failures(account) + account.in_flight)
        account.in_flight += 1
        return Attempt(key, name, delay, client, account)

    def failed(self, attempt: Attempt) -> None:
        """The attempt's password was wrong (or its account unknown or suspended)."""
        now = time.monotonic()
        attempt._account.failures.append(now)
        attempt._client.failures.append((now, attempt.name))
        self._maybe_lock(attempt.client_key, attempt._client, now)

    def succeeded(self, attempt: Attempt) -> None:
        """Forgive the client's failures for this account and its malformed exchanges (not the others)."""
        failures = attempt._client.failures
        kept = [f for f in failures if f[1] is not None and f[1] != attempt.name]
        if len(kept) != len(failures):
            failures.clear()
            failures.extend(kept)

    def end(self, attempt: Attempt) -> None:
        """Give the attempt's slots back (call exactly once per :meth:`begin`, in a ``finally``)."""
        client, account = attempt._client, attempt._account
        client.in_flight -= 1
        account.in_flight -= 1
        self._wake(client)
        if not client.in_flight and not client.failures and self._clients.get(attempt.client_key) is client:
            del self._clients[attempt.client_key]
        if not account.in_flight and not account.failures and self._accounts.get(attempt.name) is account:
            del self._accounts[attempt.name]

    def record_failure(self, ip: str) -> None:
        """A failure that named no account and checked no password, e.g. a malformed SASL exchange."""
        key = client_key(ip)
        client = self._client(key)
        now = time.monotonic()
        client.failures.append((now, None))
        self._maybe_lock(key, client, now)

    # --- inside ----------------------------------------------------------------------
    # Failures are appended in time order: those older than the window go from the left.
    def _client_failures(self, client: _Client) -> int:
        horizon = time.monotonic() - self._config.fail_window
        while client.failures and client.failures[0][0] <= horizon:
            client.failures.popleft()
        return len(client.failures)

    def _account_failures(self, account: _Account) -> int:
        horizon = time.monotonic() - self._config.fail_window
        while account.failures and account.failures[0] <= horizon:
            account.failures.popleft()
        return len(account.failures)

    def _delay(self, failures: int) -> float:
        over = failures - self._config.account_fail_threshold
        if over < 0:
            return 0.0
        return float(min(self._config.account_delay * 2 ** min(over, _DOUBLINGS), self._config.account_delay_max))

    def _maybe_lock(self, key: str, client: _Client, now: float) -> None:
        if self._client_failures(client) < self._config.fail_threshold:
            return
        log.warning("auth.lockout client=%s failures=%d lockout=%.0fs", key, len(client.failures),
                    self._config.lockout)
        client.failures.clear()
        self._locked[key] = now + self._config.lockout
        self._locked.move_to_end(key)
        if len(self._locked) > MAX_TRACKED:
            self._locked.popitem(last=False)  # the one that expires first
        self._wake(client)  # those waiting for a slot are refused now

    def _wake(self, client: _Client) -> None:
        for waiter in client.waiters:
            if not waiter.done():
                waiter.set_result(None)
        client.waiters.clear()

    def _client(self, key: str) -> _Client:
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = _Client()
            if len(self._clients) > MAX_TRACKED:
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(key)
        return client

    def _account(self, name: str) -> _Account:
        account = self._accounts.get(name)
        if account is None:
            # Enough history to reach the cap; an attack on one account must not grow this deque.
            account = self._accounts[name] = _Account(deque(maxlen=self._config.account_fail_threshold + _DOUBLINGS))
            if len(self._accounts) > MAX_TRACKED:
                self._accounts.popitem(last=False)
        else:
            self._accounts.move_to_end(name)
        return account
