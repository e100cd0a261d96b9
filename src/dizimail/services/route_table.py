"""The routing table as the operator edits it (``dizimail route``; later the admin pages and REST API).

Not to be confused with :mod:`services.routing`, which resolves one recipient (through this table,
the local domains and aliases) while mail comes in."""

from __future__ import annotations

from dizimail.interfaces import MetaStore, RoutingStore
from dizimail.model.errors import InvalidInput, NotFound
from dizimail.model.outbound import Route
from dizimail.services.accounts import normalize_domain
from dizimail.services.resolver import split_hostport
from dizimail.util.idn import unicode_address


def _domain(text: str) -> str:
    """"*" (the default route), or a domain name in U-labels as local domains are kept (accounts)."""
    return "*" if text.strip() == "*" else normalize_domain(text)


class RouteTable:
    def __init__(self, routing: RoutingStore, meta: MetaStore) -> None:
        self.routing = routing
        self.meta = meta

    async def add(self, domain: str, target: str) -> Route:
        """``target``: HOST[:PORT] (an SMTP next hop; PORT defaults to 25) or ``hold:USER`` (keep the domain's
        mail in USER's mailbox for the inner server to fetch). ``domain`` "*" is the default route."""
        domain = _domain(domain)
        if target.lower().startswith("hold:"):
            holder = unicode_address(target[5:].strip().lower())
            info = await self.meta.lookup(holder)
            if info.account is None:
                raise NotFound("unknown_user", holder)
            if domain == "*":
                raise InvalidInput("bad_route", "the default route cannot hold mail")
            route = Route(domain, "hold", holder, 0)
        else:
            try:
                host, port = split_hostport(target, 25)
            except ValueError as exc:
                raise InvalidInput("bad_route", target) from exc
            if not host or not 0 < port < 65536:
                raise InvalidInput("bad_route", target)
            route = Route(domain, "smtp", host, port)
        if domain != "*" and await self.meta.get_domain(domain) is not None:
            raise InvalidInput("bad_route", f"{domain} is a local domain here")
        await self.routing.set_route(route)
        return route

    async def list(self) -> list[Route]:
        return await self.routing.list_routes()

    async def get(self, domain: str) -> Route | None:
        return await self.routing.get_route(_domain(domain))

    async def remove(self, domain: str) -> None:
        await self.routing.remove_route(_domain(domain))
