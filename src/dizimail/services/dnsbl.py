"""DNS block lists (RFC 5782): is a client address listed in the configured zones?

The look-up starts when the client connects (``prefetch``) and is awaited at RCPT, so its latency
hides behind the greeting and EHLO. One task per address serves every connection from it while its
answer lives (the listing's TTL, clamped; a minute for "not listed"; ten seconds after an error).

Only an answer in 127.0.0.0/8 is a listing. 127.255.255.0/24 are the lists' own error codes
(Spamhaus: 252 a malformed query, 254 a query through a public resolver, 255 too many queries): they
are logged, never a listing. A zone that times out or fails never blocks mail.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.resolver

from dizimail.services.access import client_address
from dizimail.services.taskcache import TaskCache

log = logging.getLogger("dizimail.antispam")
LISTED = ipaddress.ip_network("127.0.0.0/8")
ERROR_CODES = ipaddress.ip_network("127.255.255.0/24")
POSITIVE_TTL = (60.0, 3600.0)
NEGATIVE_TTL = 60.0
ERROR_TTL = 10.0
MAX_CACHED = 50_000


@dataclass(frozen=True, slots=True)
class Listing:
    zone: str
    address: str
    codes: tuple[str, ...]

    def __str__(self) -> str:
        return f"DNSBL {self.zone} listed {self.address} ({', '.join(self.codes)})"


@dataclass(frozen=True, slots=True)
class _Answer:
    listings: tuple[Listing, ...]
    ttl: float


def query_name(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, zone: str) -> str:
    """1.2.3.4 → 4.3.2.1.zone; IPv6 → its 32 nibbles reversed (RFC 5782 §2.1, §2.4)."""
    pointer = addr.reverse_pointer  # 4.3.2.1.in-addr.arpa / b.a.9...ip6.arpa
    return pointer.rsplit(".", 2)[0] + "." + zone.rstrip(".")


class Dnsbl:
    def __init__(self, zones: list[str], resolver: dns.asyncresolver.Resolver) -> None:
        self.zones = [z.strip().rstrip(".").lower() for z in zones if z.strip()]
        self.resolver = resolver
        self._cache: TaskCache[str, _Answer] = TaskCache(self._lookup, lambda a: a.ttl, ERROR_TTL, MAX_CACHED)

    def prefetch(self, ip: str) -> None:
        """Start the look-up of ``ip`` (if none is cached) without waiting for it."""
        if self.zones:
            self._cache.get(ip)

    async def listed(self, ip: str) -> tuple[Listing, ...]:
        """The zones that list ``ip`` (none when no zone answered in time)."""
        if not self.zones:
            return ()
        return (await self._cache.value(ip)).listings

    async def _lookup(self, ip: str) -> _Answer:
        addr = client_address(ip)
        if addr is None:
            return _Answer((), NEGATIVE_TTL)
        results = await asyncio.gather(*(self._zone(addr, zone) for zone in self.zones))
        listings = tuple(r[0] for r in results if r[0] is not None)
        return _Answer(listings, min(r[1] for r in results))

    async def _zone(self, addr: ipaddress.IPv4Address | ipaddress.IPv6Address,
                    zone: str) -> tuple[Listing | None, float]:
        name = query_name(addr, zone)
        try:
            answer = await self.resolver.resolve(name, "A")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None, NEGATIVE_TTL
        except (dns.exception.DNSException, OSError) as exc:  # timeouts, SERVFAIL: never a listing
            log.warning("dnsbl.unanswered zone=%s ip=%s error=%s", zone, addr, type(exc).__name__)
            return None, ERROR_TTL
        codes: list[str] = []
        for record in answer:
            code = ipaddress.ip_address(record.address)
            if code in ERROR_CODES or code not in LISTED:
                log.warning("dnsbl.error_code zone=%s ip=%s code=%s (not a listing)", zone, addr, code)
                continue
            codes.append(str(code))
        if not codes:
            return None, ERROR_TTL
        ttl = min(max(float(answer.rrset.ttl if answer.rrset is not None else 0), POSITIVE_TTL[0]), POSITIVE_TTL[1])
        return Listing(zone, str(addr), tuple(sorted(codes))), ttl
