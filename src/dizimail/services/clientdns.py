"""What DNS says about a client: its reverse name, forward-confirmed (iprev, RFC 8601 §3.2; FCrDNS),
and its SPF result (RFC 7208, by pyspf in a thread, asking the node's resolver).

iprev: the PTR names of the address (at most 10), each looked up forward (A or AAAA); ``pass`` when one of
them leads back to the address (that name is the client's), ``fail`` when none does or there is no PTR,
``temperror`` when DNS did not answer. Cached per address like the DNSBL answers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.resolver
import spf

from dizimail.services.access import client_address
from dizimail.services.resolver import make_sync_resolver
from dizimail.services.taskcache import TaskCache

log = logging.getLogger("dizimail.antispam")
MAX_PTR_NAMES = 10  # RFC 8601 §3.2 leaves it to the receiver; Postfix and OpenDMARC use 10 as well
IPREV_TTL = 600.0


@dataclass(frozen=True, slots=True)
class Iprev:
    result: str  # pass, fail, temperror
    name: str = ""  # the forward-confirmed name (pass), or the first PTR name seen

    @property
    def client_name(self) -> str:
        """For the Received header: the confirmed name, else "unknown" (Postfix's convention)."""
        return self.name if self.result == "pass" else "unknown"


class ReverseDns:
    def __init__(self, resolver: dns.asyncresolver.Resolver) -> None:
        self.resolver = resolver
        self._cache: TaskCache[str, Iprev] = TaskCache(self._lookup, lambda r: IPREV_TTL if r.result != "temperror"
                                                       else 10.0)

    async def iprev(self, ip: str) -> Iprev:
        return await self._cache.value(ip)

    async def _lookup(self, ip: str) -> Iprev:
        addr = client_address(ip)
        if addr is None:
            return Iprev("fail")
        try:
            answer = await self.resolver.resolve(addr.reverse_pointer, "PTR")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return Iprev("fail")
        except (dns.exception.DNSException, OSError) as exc:
            log.info("iprev.unanswered ip=%s error=%s", addr, type(exc).__name__)
            return Iprev("temperror")
        names = [r.target.to_text(omit_final_dot=True).lower() for r in answer][:MAX_PTR_NAMES]
        rdtype = "A" if addr.version == 4 else "AAAA"
        temporary = False
        for name in names:
            try:
                forward = await self.resolver.resolve(name, rdtype)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except (dns.exception.DNSException, OSError):
                temporary = True
                continue
            if any(ipaddress.ip_address(r.address) == addr for r in forward):
                return Iprev("pass", name)
        return Iprev("temperror" if temporary else "fail", names[0] if names else "")


_thread = threading.local()  # the resolver of the SpfChecker whose check runs in this worker thread


def _spf_lookup(name: str, qtype: str, strict: bool = True, timeout: float = 20) -> list[tuple[tuple[str, str], Any]]:
    """pyspf's DNS hook (``spf.DNSLookup``: module-level, meant to be replaced, as its own pydns and
    dnspython variants are). It asks the resolver of the check running in this thread, so nodes with
    different resolvers in one process (the tests) never ask each other's."""
    resolver: dns.resolver.Resolver = _thread.resolver
    try:
        answer = resolver.resolve(name, qtype, lifetime=timeout, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return []
    except (dns.exception.DNSException, OSError) as exc:
        raise spf.TempError(f"DNS {exc}") from exc
    return list(_records(name, qtype, answer))


spf.DNSLookup = _spf_lookup


def _records(name: str, qtype: str, answer: dns.resolver.Answer) -> Iterator[tuple[tuple[str, str], Any]]:
    for rdata in answer:
        if qtype in ("A", "AAAA"):
            yield (name, qtype), rdata.address
        elif qtype == "MX":
            yield (name, qtype), (rdata.preference, rdata.exchange)
        elif qtype == "PTR":
            yield (name, qtype), rdata.target.to_text(True)
        elif qtype in ("TXT", "SPF"):
            yield (name, qtype), rdata.strings


class SpfChecker:
    def __init__(self, servers: list[str], timeout: float) -> None:
        self.timeout = timeout
        self.resolver = make_sync_resolver(servers, timeout)

    def _check(self, ip: str, identity: str, helo: str) -> tuple[str, str]:
        _thread.resolver = self.resolver
        result, explanation = spf.check2(i=ip, s=identity, h=helo, timeout=self.timeout, querytime=self.timeout)
        return str(result), str(explanation)

    async def check(self, ip: str, sender: str, helo: str) -> tuple[str, str]:
        """(result, explanation) for the MAIL FROM identity (the HELO one for the null sender, RFC 7208
        §2.4); results: pass, fail, softfail, neutral, none, permerror, temperror."""
        identity = sender or f"postmaster@{helo}"
        try:
            return await asyncio.to_thread(self._check, ip, identity, helo)
        except Exception as exc:  # pyspf raises on what it cannot parse at all: an error, never a crash
            return "temperror", f"{type(exc).__name__}: {exc}"
