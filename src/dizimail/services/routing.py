"""Recipient resolution: local account, alias expansion, domain aliases, remote, unknown."""

from __future__ import annotations

from dataclasses import dataclass, field

from dizimail.interfaces import MetaStore
from dizimail.model.types import ACTIVE, Account

MAX_ALIAS_DEPTH = 8
MAX_EXPANSION = 10_000


@dataclass
class Resolution:
    """What one envelope recipient turns into."""

    kind: str  # local | remote | unknown | suspended | domain_suspended
    accounts: list[Account] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)


class Router:
    def __init__(self, meta: MetaStore) -> None:
        self.meta = meta

    async def is_local_domain(self, domain: str) -> bool:
        return await self.meta.get_domain(domain) is not None

    async def resolve(self, address: str) -> Resolution:
        """Resolve ``address`` (already lower-case) through domain aliases and aliases."""
        result = Resolution("local")
        seen: set[str] = set()
        status = await self._expand(address, result, seen, 0)
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
