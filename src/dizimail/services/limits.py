"""Limits shared by every session of this process: connections per client (and the admission rule
listeners apply when a connection arrives: they get it as callables, ``net`` imports no service), and
bytes of client data held in memory."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable


def client_key(ip: str) -> str:
    """Who a peer address stands for when counting: an IPv4 address (also when IPv4-mapped), or an IPv6
    address's /64 (one host or site is routinely given a whole /64: per-address counting would hand it
    2^64 fresh counters)."""
    try:
        addr = ipaddress.ip_address(ip.partition("%")[0])
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return f"{ipaddress.IPv6Address(int(addr) >> 64 << 64)}/64"
    return str(addr)


class ConnectionLimiter:
    def __init__(self, max_per_ip: int) -> None:
        self.max_per_ip = max_per_ip
        self._open: dict[str, int] = {}

    def acquire(self, ip: str) -> bool:
        """Count a new connection; False (and nothing counted) when the client is at its limit."""
        key = client_key(ip)
        n = self._open.get(key, 0)
        if n >= self.max_per_ip:
            return False
        self._open[key] = n + 1
        return True

    def release(self, ip: str) -> None:
        key = client_key(ip)
        n = self._open.get(key, 0) - 1
        if n <= 0:
            self._open.pop(key, None)
        else:
            self._open[key] = n

    def count(self, ip: str) -> int:
        return self._open.get(client_key(ip), 0)

    def gate(self, locked: Callable[[str], bool] | None = None) -> tuple[Callable[[str], str | None],
                                                                        Callable[[str], None]]:
        """The (admit, release) pair a listener calls at accept and when the connection ends. ``admit``
        returns None for an admitted (and counted) connection, else the i18n key of the refusal.
        ``locked``: for listeners that exist to log in (IMAP, POP3, submission), refuse clients locked
        out of authentication; the MX port never gets it (a lockout stops logins, not mail)."""
        def admit(ip: str) -> str | None:
            if locked is not None and locked(ip):
                return "locked_out"
            if not self.acquire(ip):
                return "too_many_connections"
            return None
        return admit, self.release


class ConnectionRate:
    """At most ``per_minute`` new connections per client (client_key) over any minute, as a token
    bucket: each client's bucket holds ``per_minute`` tokens and refills one every 60/``per_minute``
    seconds; a connection takes one. O(1) per connection; buckets that are full again are dropped
    when the table grows past ``max_clients``, so a scan from many addresses cannot grow it for ever."""

    def __init__(self, per_minute: int, max_clients: int = 100_000) -> None:
        self.capacity = float(per_minute)
        self.refill = per_minute / 60.0
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, when)

    def take(self, ip: str, now: float) -> bool:
        """Count a connection at ``now`` (seconds, monotonic); False when the client is over its rate."""
        if self.capacity <= 0:
            return True
        key = client_key(ip)
        tokens, when = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - when) * self.refill)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        if key not in self._buckets and len(self._buckets) >= self.max_clients:
            self._prune(now)
        self._buckets[key] = (tokens - 1.0, now)
        return True

    def _prune(self, now: float) -> None:
        full = [k for k, (tokens, when) in self._buckets.items() if tokens + (now - when) * self.refill >= self.capacity]
        for k in full:
            del self._buckets[k]
        while len(self._buckets) >= self.max_clients:  # every one of them busy: the oldest go
            del self._buckets[next(iter(self._buckets))]


class MemoryBudget:
    """Bytes that all sessions together may hold in memory for client data not yet processed (IMAP
    literals): each session takes before it buffers and gives back when done, so many connections
    announcing large literals at once cannot grow the node past ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    def take(self, size: int, alone: bool = False) -> bool:
        """Reserve ``size`` bytes; False (nothing reserved) when that would pass the limit. With ``alone``,
        a reservation larger than the whole limit is granted when nothing else is reserved."""
        if size > self.limit - self.in_use and not (alone and self.in_use == 0):
            return False
        self.in_use += size
        return True

    def give(self, size: int) -> None:
        self.in_use = max(0, self.in_use - size)
