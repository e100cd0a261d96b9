"""The operator's block and allow lists (anti-spam layer 1, DESIGN.md §5): ``dizimail block|allow``.

An entry is an IP address or CIDR network, one sender (``spam@usa.com``), a domain's senders
(``@usa.com``, also written ``*@usa.com``) or its subdomains' (``*.usa.com``: ``mx.usa.com``,
``a.b.usa.com``, not ``usa.com`` itself). An entry holds for the whole server or for one domain's
recipients. Matching costs the same whatever the lists hold: a set probe per prefix length in use
for addresses, one per label of the sender's domain for senders.

The checks that use the lists are in services.policy.network; what an allow entry lets past is said
there (the anti-spam checks, never the relay rules or the virus scan).
"""

from __future__ import annotations

import functools
import ipaddress
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from dizimail.interfaces import AccessListStore
from dizimail.model.access import AccessEntry, ListName
from dizimail.model.errors import InvalidInput
from dizimail.util.idn import ascii_domain, unicode_domain

CACHE_SECONDS = 2.0  # an operator's change reaches running sessions within this
MAX_IMPORT_LINE = 1000
MAX_PERSONAL = 500  # entries of one user's own allow or block list
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_LOCAL_BAD = frozenset(' \t\r\n<>()[],;:\\"')


def normalize_domain(text: str) -> str:
    """Lower-case, no final dot, A-labels for an internationalised name (电力.cn → xn--...): the lists
    match names as DNS spells them (client host names from PTR records are A-labels), where local
    domains are kept in U-labels (services.accounts); util.idn converts both ways."""
    try:
        domain = ascii_domain(text)
    except ValueError as exc:
        raise InvalidInput("bad_access_pattern", f"{text}: not a valid domain") from exc
    if not domain or len(domain) > 253 or not all(_LABEL.fullmatch(label) for label in domain.split(".")):
        raise InvalidInput("bad_access_pattern", f"{text}: not a valid domain")
    return domain


def parse_pattern(text: str) -> str:
    """An entry as the operator wrote it → its normal form; InvalidInput (with the reason) if it is none."""
    value = text.strip()
    if not value:
        raise InvalidInput("bad_access_pattern", "empty")
    if "@" not in value and not value.startswith("*."):
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            if "." in value and ":" not in value and "/" not in value and not value.replace(".", "").isdigit():
                raise InvalidInput("bad_access_pattern", f"{value}: write @{value} for the domain's senders or "
                                                         f"*.{value} for its subdomains'") from None
            raise InvalidInput("bad_access_pattern", f"{value}: not an address, network or sender") from None
        if network.prefixlen == 0:
            raise InvalidInput("bad_access_pattern", f"{value}: the whole Internet is not an entry")
        return str(network.network_address) if network.prefixlen == network.max_prefixlen else str(network)
    if value.startswith("*."):
        return "*." + normalize_domain(value[2:])
    local, _, domain = value.rpartition("@")
    if local in ("", "*"):
        return "@" + normalize_domain(domain)
    if "*" in local or any(c in _LOCAL_BAD for c in local) or len(local) > 64:
        raise InvalidInput("bad_access_pattern", f"{value}: a sender is user@domain; wildcards are @domain "
                                                 "and *.domain")
    return f"{local.lower()}@{normalize_domain(domain)}"


def personal_patterns(patterns: Iterable[str]) -> list[str]:
    """A user's own list as they typed it, in normal form: senders, @domains, *.domains (no networks: a user
    knows senders, not the servers they use), at most MAX_PERSONAL; InvalidInput names the first bad line."""
    wanted = []
    for text in patterns:
        if text.strip():
            normal = parse_pattern(text)
            if "@" not in normal and not normal.startswith("*."):
                raise InvalidInput("bad_access_pattern", f"{text}: a sender, @domain or *.domain")
            wanted.append(normal)
    wanted = list(dict.fromkeys(wanted))
    if len(wanted) > MAX_PERSONAL:
        raise InvalidInput("bad_access_pattern", f"at most {MAX_PERSONAL} entries")
    return wanted


def personal_scope(address: str) -> str:
    """The scope of a user's own entries: their address (a domain's scope never holds an @)."""
    return address.strip().lower()


def display_pattern(pattern: str) -> str:
    """An entry as people read it: internationalised domains in their own script (@xn--tfr181f.cn → @电力.cn)."""
    if "xn--" not in pattern:
        return pattern
    head, sep, domain = pattern.rpartition("@") if "@" in pattern else pattern.rpartition("*.")
    try:
        return head + sep + unicode_domain(domain)
    except ValueError:
        return pattern


def split_sender(sender: str) -> tuple[str, str] | None:
    """(local part lower-cased, normalised domain) of a reverse-path; None for the null sender or one
    whose domain is no domain (it matches no sender entry, never an error here)."""
    local, at, domain = sender.rpartition("@")
    if not at or not local:
        return None
    try:
        return local.lower(), normalize_domain(domain)
    except InvalidInput:
        return None


@dataclass
class _Matcher:
    """One list of one scope, compiled."""

    networks: dict[tuple[int, int], set[int]] = field(default_factory=dict)  # (version, prefix) → network ints
    senders: dict[str, str] = field(default_factory=dict)  # normal form → itself (the entry that matched)
    domains: set[str] = field(default_factory=set)
    parents: set[str] = field(default_factory=set)  # *.domain, stored as "domain"

    def add(self, pattern: str) -> None:
        if pattern.startswith("*."):
            self.parents.add(pattern[2:])
        elif pattern.startswith("@"):
            self.domains.add(pattern[1:])
        elif "@" in pattern:
            self.senders[pattern] = pattern
        else:
            net = ipaddress.ip_network(pattern)
            self.networks.setdefault((net.version, net.prefixlen), set()).add(int(net.network_address))

    def ip(self, addr: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> str | None:
        if addr is None:
            return None
        value, bits = int(addr), addr.max_prefixlen
        for (version, prefix), nets in self.networks.items():
            if version == addr.version:
                masked = value >> (bits - prefix) << (bits - prefix)
                if masked in nets:
                    net = ipaddress.ip_network((masked, prefix))
                    return str(net.network_address) if prefix == bits else str(net)
        return None

    def sender(self, parts: tuple[str, str] | None) -> str | None:
        if parts is None:
            return None
        local, domain = parts
        exact = self.senders.get(f"{local}@{domain}")
        if exact is not None:
            return exact
        if domain in self.domains:
            return "@" + domain
        labels = domain.split(".")
        for i in range(1, len(labels)):
            parent = ".".join(labels[i:])
            if parent in self.parents:
                return "*." + parent
        return None


@dataclass(frozen=True, slots=True)
class Hit:
    """Which entry matched: for the verdict's reason and the log."""

    list: ListName
    scope: str
    pattern: str

    def __str__(self) -> str:
        return f"{self.list} list ({self.scope or 'global'}): {self.pattern}"


@dataclass
class ImportResult:
    added: int = 0
    listed: int = 0  # valid lines already in the list
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # line number, line, why


@functools.lru_cache(maxsize=4096)
def client_address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A peer address as the lists see it: IPv4-mapped IPv6 as the IPv4 address; None if none.
    Kept for the last few thousand peers: every check of a message asks again, and parsing was a
    twentieth of the relay path's time (the results are immutable)."""
    try:
        addr = ipaddress.ip_address(ip.partition("%")[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


class AccessLists:
    def __init__(self, store: AccessListStore) -> None:
        self.store = store
        self._compiled: dict[tuple[ListName, str], _Matcher] = {}
        self._version: tuple[int, int] | None = None
        self._checked = -1.0

    # --- the operator ----------------------------------------------------------
    @staticmethod
    def scope_of(domain: str | None) -> str:
        return normalize_domain(domain) if domain else ""

    async def add(self, name: ListName, patterns: Iterable[str], domain: str | None = None, note: str = "") -> int:
        scope = self.scope_of(domain)
        entries = [AccessEntry(name, scope, parse_pattern(p), note) for p in patterns]
        added = await self.store.add_access(entries)
        self._checked = -1.0
        return added

    async def remove(self, name: ListName, pattern: str, domain: str | None = None) -> str:
        normal = parse_pattern(pattern)
        await self.store.remove_access(name, self.scope_of(domain), normal)
        self._checked = -1.0
        return normal

    async def entries(self, name: ListName | None = None, domain: str | None = None) -> list[AccessEntry]:
        scope = self.scope_of(domain) if domain else None
        return [e for e in await self.store.list_access()
                if (name is None or e.list is name) and (scope is None or e.scope == scope)]

    # --- a user's own lists (webmail settings): senders only, scoped to the user's address -------------------
    async def personal(self, address: str) -> dict[ListName, list[str]]:
        """The user's own allow and block lists (their patterns, as shown)."""
        scope = personal_scope(address)
        out: dict[ListName, list[str]] = {ListName.ALLOW: [], ListName.BLOCK: []}
        for e in await self.store.list_access():
            if e.scope == scope:
                out[e.list].append(display_pattern(e.pattern))
        return out

    async def set_personal(self, address: str, name: ListName, patterns: Iterable[str]) -> list[str]:
        """Replace the user's own ``name`` list with ``patterns`` (senders, @domains, *.domains; no networks:
        a user knows senders, not the servers they use). InvalidInput names the first bad line."""
        scope, wanted = personal_scope(address), personal_patterns(patterns)
        have = {e.pattern for e in await self.store.list_access() if e.scope == scope and e.list is name}
        for gone in have - set(wanted):
            await self.store.remove_access(name, scope, gone)
        await self.store.add_access([AccessEntry(name, scope, p, "") for p in wanted if p not in have])
        self._checked = -1.0
        return wanted

    async def import_lines(self, name: ListName, lines: Sequence[str], domain: str | None = None) -> ImportResult:
        """One entry per line, optionally followed by a note (``192.0.2.0/24 botnet``); blank lines and
        ``#`` comments are skipped. Good lines are added, bad ones come back with their number and why."""
        scope = self.scope_of(domain)
        result = ImportResult()
        entries: dict[str, AccessEntry] = {}
        for lineno, raw in enumerate(lines, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if len(line) > MAX_IMPORT_LINE:
                result.errors.append((lineno, line[:80] + "…", f"{line[:80]}…: longer than {MAX_IMPORT_LINE} characters"))
                continue
            pattern, _, note = line.partition(" ")
            try:
                normal = parse_pattern(pattern)
            except InvalidInput as exc:
                result.errors.append((lineno, line, exc.detail))
                continue
            entries.setdefault(normal, AccessEntry(name, scope, normal, note.strip()))
        result.added = await self.store.add_access(list(entries.values()))
        result.listed = len(entries) - result.added
        self._checked = -1.0
        return result

    # --- the checks --------------------------------------------------------------
    async def _matchers(self) -> dict[tuple[ListName, str], _Matcher]:
        now = time.monotonic()
        if now - self._checked > CACHE_SECONDS:
            self._checked = now
            version = await self.store.access_version()
            if version != self._version:
                compiled: dict[tuple[ListName, str], _Matcher] = {}
                for e in await self.store.list_access():
                    compiled.setdefault((e.list, e.scope), _Matcher()).add(e.pattern)
                self._compiled, self._version = compiled, version
        return self._compiled

    async def match(self, name: ListName, scope: str, ip: str | None = None, sender: str | None = None) -> Hit | None:
        """The entry of list ``name`` for ``scope`` ("" global, a recipient's domain, or a user's address: their
        own list) that the client address or the sender matches, if any."""
        matcher = (await self._matchers()).get((name, scope))
        if matcher is None:
            return None
        found = matcher.ip(client_address(ip)) if ip else None
        if found is None and sender:
            found = matcher.sender(split_sender(sender))
        return Hit(name, scope, found) if found is not None else None
