"""Next hop per destination domain (RFC 5321 §5.1): routing table, smarthost, then MX with A/AAAA fallback."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver

from dizimail.config.schema import DeliveryConfig
from dizimail.interfaces import RoutingStore
from dizimail.interfaces.outbound import Hop
from dizimail.services.resolver import make_resolver, split_hostport
from dizimail.services.secretbox import Secrets
from dizimail.util.idn import ascii_domain, unicode_domain

log = logging.getLogger("dizimail.delivery")
MAX_MX_HOSTS = 10


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a domain's mail goes: an ordered list of hops, or why there is none.

    ``key`` names the destination for concurrency limits and back-off (one per route, smarthost or domain).
    ``error`` is an SMTP-style reason ("4.4.3 ..." temporary, "5.1.2 ..." permanent) when ``hops`` is empty.
    """

    key: str
    hops: tuple[Hop, ...]
    error: str = ""


class NextHops:
    def __init__(self, config: DeliveryConfig, routing: RoutingStore, secrets: Secrets) -> None:
        self.config = config
        self.routing = routing
        self.secrets = secrets
        self.resolver = make_resolver(config.dns_servers, 10.0)

    def _tls(self, domain: str) -> str:
        """``domain`` in A-labels; the operator may have written the policy's key in either spelling."""
        policy = self.config.tls_policy
        if domain in policy or "xn--" not in domain:
            return policy.get(domain, "may")
        try:
            return policy.get(unicode_domain(domain), "may")
        except ValueError:
            return "may"

    async def resolve(self, domain: str) -> Destination:
        try:  # routes are kept under U-labels, DNS is asked in A-labels (util.idn)
            named, domain = unicode_domain(domain), ascii_domain(domain)
        except ValueError:
            named = domain
        route = await self.routing.get_route(named) or await self.routing.get_route("*")
        if route is not None and route.kind == "smtp":
            tls = self._tls(domain)
            return Destination(f"route:{route.host}:{route.port}:{tls}", (Hop(route.host, route.port, tls),))
        if self.config.smarthost:
            host, port = split_hostport(self.config.smarthost, 25)
            password = await self.secrets.get("smarthost-password") or self.config.smarthost_password
            return Destination(f"smarthost:{host}:{port}", (Hop(
                host, port, self.config.smarthost_tls, username=self.config.smarthost_username,
                password=password, fingerprint=self.config.smarthost_tls_fingerprint),))
        return await self._mx(domain, named)

    async def _mx(self, domain: str, named: str) -> Destination:
        """``domain`` in A-labels (what DNS is asked); ``named``, as people read it, goes in the reasons
        that reach the sender's bounce (电网.cn (xn--wnyq9s.cn), not the A-label alone)."""
        key = f"mx:{domain}"
        shown = domain if named == domain else f"{named} ({domain})"
        literal = _address_literal(domain)
        if literal is not None:
            return Destination(key, (Hop(literal, self.config.mx_port, self._tls(domain)),))
        try:
            answer = await self.resolver.resolve(domain, "MX")
            records = sorted(((r.preference, str(r.exchange).rstrip(".").lower()) for r in answer),
                             key=lambda pr: pr[0])
        except dns.resolver.NXDOMAIN:
            return Destination(key, (), f"5.1.2 Domain {shown} does not exist")
        except dns.resolver.NoAnswer:
            records = [(0, domain)]  # RFC 5321 §5.1: no MX, the domain itself is the host
        except (dns.exception.DNSException, OSError) as exc:
            return Destination(key, (), f"4.4.3 DNS lookup of {shown} failed: {type(exc).__name__}")
        if len(records) == 1 and records[0][1] in ("", "."):
            return Destination(key, (), f"5.1.10 Domain {shown} accepts no mail (null MX)")
        hops: list[Hop] = []
        temporary = ""
        for _pref, host in records[:MAX_MX_HOSTS]:
            try:
                addresses = await self._addresses(host)
            except (dns.exception.DNSException, OSError) as exc:
                temporary = f"4.4.3 DNS lookup of {host} failed: {type(exc).__name__}"
                continue
            hops.extend(Hop(a, self.config.mx_port, self._tls(domain), server_name=host) for a in addresses)
        if not hops:
            return Destination(key, (), temporary or f"5.4.4 No address for the mail hosts of {shown}")
        return Destination(key, tuple(hops))

    async def _addresses(self, host: str) -> list[str]:
        out: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self.resolver.resolve(host, rdtype)
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                continue
            out.extend(r.address for r in answer)
        return out


def _address_literal(domain: str) -> str | None:
    """RFC 5321 §4.1.3: [192.0.2.1] or [IPv6:2001:db8::1]."""
    if not (domain.startswith("[") and domain.endswith("]")):
        return None
    inner = domain[1:-1]
    if inner.lower().startswith("ipv6:"):
        inner = inner[5:]
    try:
        return str(ipaddress.ip_address(inner))
    except ValueError:
        return None
