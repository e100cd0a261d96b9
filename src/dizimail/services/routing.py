"""Recipient resolution: local account, alias expansion, domain aliases, routes, remote, unknown.

The routing table itself, as the operator edits it, is :mod:`services.route_table`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from dizimail.interfaces import MetaStore, RoutingStore
from dizimail.model.lists import ListTarget
from dizimail.model.outbound import Route
from dizimail.model.types import ACTIVE, Account
from dizimail.services.srs import SenderRewriter
from dizimail.util.idn import unicode_address

MAX_ALIAS_DEPTH = 8
MAX_EXPANSION = 10_000


class Kind(StrEnum):
    """What an address is here: ``local`` (accounts, perhaps remote addresses too through aliases),
    ``remote`` (only other servers' addresses), ``hold`` (a poll-mode holding box), or why it is
    nothing: ``unknown``, ``suspended`` (the account), ``domain_suspended``."""

    LOCAL = "local"
    REMOTE = "remote"
    HOLD = "hold"
    LIST = "list"  # a mailing list's address, or one of its command addresses (services.lists)
    UNKNOWN = "unknown"
    SUSPENDED = "suspended"
    DOMAIN_SUSPENDED = "domain_suspended"


@dataclass
class Resolution:
    """What one envelope recipient turns into."""

    kind: Kind
    accounts: list[Account] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)
    ours: bool = False  # the address is in a local domain or one our routing table serves: anyone may send to it
    target: ListTarget | None = None  # Kind.LIST: the list and what the address asks of it


class Router:
    def __init__(self, meta: MetaStore, routing: RoutingStore | None = None) -> None:
        self.meta = meta
        self.routing = routing
        self.srs: SenderRewriter | None = None  # our SRS addresses lead back to their authors
        self.lists: Callable[[str], Awaitable[ListTarget | None]] | None = None  # services.lists.manage

    async def resolve(self, address: str) -> Resolution:
        """Resolve ``address`` (already lower-case) through domain aliases and aliases."""
        route = await self._route(address)
        if route is not None and route.kind == "hold":
            return await self._hold(route)
        result = Resolution(Kind.LOCAL)
        seen: set[str] = set()
        status = await self._expand(address, result, seen, 0)
        if status is Kind.LIST:
            return result
        if route is not None and route.kind == "smtp" and address in result.remote:
            result.ours = True  # a domain we route (the gateway's organisation domains)
        if status is not Kind.LOCAL:
            return Resolution(status)
        if not result.accounts and not result.remote:
            return Resolution(Kind.UNKNOWN)
        if not result.accounts:
            result.kind = Kind.REMOTE
        return result

    async def is_ours(self, domain: str) -> bool:
        """Whether ``domain`` (lower-case, either IDN spelling) is a local domain or one our routing table serves."""
        if (await self.meta.lookup(unicode_address(f"postmaster@{domain}"))).domain is not None:
            return True
        return await self._route(f"postmaster@{domain}") is not None

    async def _expand(self, address: str, result: Resolution, seen: set[str], depth: int) -> Kind:
        if address in seen or depth > MAX_ALIAS_DEPTH or len(seen) > MAX_EXPANSION:
            return Kind.LOCAL  # a loop or an absurd chain contributes nothing more
        seen.add(address)
        info = await self.meta.lookup(unicode_address(address))  # our domains are kept in U-labels
        domain = info.domain
        if domain is None:
            if address not in result.remote:
                result.remote.append(address)
            return Kind.LOCAL
        if depth == 0:
            result.ours = True
        if domain.status != ACTIVE:
            return Kind.DOMAIN_SUSPENDED if depth == 0 else Kind.LOCAL
        if domain.alias_of:
            local = address.rpartition("@")[0]
            return await self._expand(f"{local}@{domain.alias_of}", result, seen, depth)
        account = info.account
        if account is not None:
            if account.status != ACTIVE:
                return Kind.SUSPENDED if depth == 0 else Kind.LOCAL
            if all(a.id != account.id for a in result.accounts):
                result.accounts.append(account)
            return Kind.LOCAL
        alias = info.alias
        if alias is None and depth == 0 and self.lists is not None:
            found = await self.lists(address)  # a list is reached by its own address only, never through an alias
            if found is not None:
                result.kind, result.target = Kind.LIST, found
                return Kind.LIST
        if alias is None:
            original = self.srs.reverse(address) if depth == 0 and self.srs is not None else None
            if original is not None:  # a bounce of mail a user's rules sent on (services.srs): to its author
                return await self._expand(original, result, seen, depth + 1)
            return Kind.UNKNOWN if depth == 0 else Kind.LOCAL
        for target in alias.targets:
            await self._expand(target, result, seen, depth + 1)
        return Kind.LOCAL

    async def _route(self, address: str) -> Route | None:
        if self.routing is None:
            return None
        return await self.routing.get_route(unicode_address(address).rpartition("@")[2])

    async def _hold(self, route: Route) -> Resolution:
        """A domain routed to "hold" (gateway, poll mode): one copy per recipient in the holding mailbox."""
        info = await self.meta.lookup(unicode_address(route.host))
        if info.account is None or info.account.status != ACTIVE:
            return Resolution(Kind.SUSPENDED)
        return Resolution(Kind.HOLD, accounts=[info.account], ours=True)
