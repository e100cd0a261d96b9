"""Recipient resolution: local account, alias expansion, domain aliases, remote, unknown."""

from __future__ import annotations

from dataclasses import dataclass, field

from dizimail.interfaces import MetaStore, RoutingStore
from dizimail.model.outbound import Route
from dizimail.model.types import ACTIVE, Account

MAX_ALIAS_DEPTH = 8
MAX_EXPANSION = 10_000


@dataclass
class Resolution:
    """What one envelope recipient turns into."""

    kind: str  # local | remote | hold | unknown | suspended | domain_suspended
    accounts: list[Account] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)
    ours: bool = False  # the address is in a local domain or one our routing table serves: anyone may send to it


class Router:
    def __init__(self, meta: MetaStore, routing: RoutingStore | None = None) -> None:
        self.meta = meta
        self.routing = routing

    async def resolve(self, address: str) -> Resolution:
        """Resolve ``address`` (already lower-case) through domain aliases and aliases."""
        route = await self._route(address)
        if route is not None and route.kind == "hold":
            return await self._hold(route)
        result = Resolution("local")
        seen: set[str] = set()
        status = await self._expand(address, result, seen, 0)
        if route is not None and route.kind == "smtp" and address in result.remote:
            result.ours = True  # a domain we route (the gateway's organisation domains)
        if status != "local":
            return Resolution(status)
        if not result.accounts and not result.remote:
            return Resolution("unknown")
        if not result.accounts:
            result.kind = "remote"
        return result

    async def _expand(self, address: str, result: Resolution, seen: set[str], depth: int) -> str:
        if address in seen or depth > MAX_ALIAS_DEPTH or len(seen) > MAX_EXPANSION:
            return "local"  # a loop or an absurd chain contributes nothing more
        seen.add(address)
        info = await self.meta.lookup(address)
        domain = info.domain
        if domain is None:
            if address not in result.remote:
                result.remote.append(address)
            return "local"
        if depth == 0:
            result.ours = True
        if domain.status != ACTIVE:
            return "domain_suspended" if depth == 0 else "local"
        if domain.alias_of:
            local = address.rpartition("@")[0]
            return await self._expand(f"{local}@{domain.alias_of}", result, seen, depth)
        account = info.account
        if account is not None:
            if account.status != ACTIVE:
                return "suspended" if depth == 0 else "local"
            if all(a.id != account.id for a in result.accounts):
                result.accounts.append(account)
            return "local"
        alias = info.alias
        if alias is None:
            return "unknown" if depth == 0 else "local"
        for target in alias.targets:
            await self._expand(target, result, seen, depth + 1)
        return "local"

    async def _route(self, address: str) -> Route | None:
        if self.routing is None:
            return None
        return await self.routing.get_route(address.rpartition("@")[2])

    async def _hold(self, route: Route) -> Resolution:
        """A domain routed to "hold" (gateway, poll mode): one copy per recipient in the holding mailbox."""
        info = await self.meta.lookup(route.host)
        if info.account is None or info.account.status != ACTIVE:
            return Resolution("suspended")
        return Resolution("hold", accounts=[info.account], ours=True)
