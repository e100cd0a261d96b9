"""The DNS resolver this node asks (delivery's MX/A look-ups, the anti-spam DNSBL queries): the system's,
or ``delivery.dns_servers``."""

from __future__ import annotations

import dns.asyncresolver
import dns.resolver


def split_hostport(value: str, default_port: int) -> tuple[str, int]:
    """"host", "host:port", "[v6]:port" or "[1.2.3.4]" → (host, port)."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else default_port
        return host, port
    if value.count(":") == 1:
        host, _, port_text = value.partition(":")
        return host, int(port_text)
    return value, default_port


def _configure(resolver: dns.resolver.BaseResolver, servers: list[str], lifetime: float) -> None:
    if servers:
        parsed = [split_hostport(s, 53) for s in servers]
        resolver.nameservers = [h for h, _ in parsed]
        resolver.port = parsed[0][1]
    resolver.lifetime = lifetime


def make_resolver(servers: list[str], lifetime: float) -> dns.asyncresolver.Resolver:
    """An asyncio resolver with its own answer cache (TTLs honoured) asking ``servers`` (IP[:PORT]; all
    on the first one's port), or the system's resolvers when the list is empty."""
    resolver = dns.asyncresolver.Resolver(configure=not servers)
    _configure(resolver, servers, lifetime)
    resolver.cache = dns.resolver.Cache()
    return resolver


def make_sync_resolver(servers: list[str], lifetime: float) -> dns.resolver.Resolver:
    """The same for libraries that ask DNS synchronously (pyspf, dkimpy), run in worker threads."""
    resolver = dns.resolver.Resolver(configure=not servers)
    _configure(resolver, servers, lifetime)
    resolver.cache = dns.resolver.LRUCache()
    return resolver
