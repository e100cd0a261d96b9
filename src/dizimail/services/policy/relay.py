"""Client networks that may relay (send to domains that are not ours) without logging in: those listed in
config (``smtp.trusted_networks``) or by the operator (``dizimail relay allow``, e.g. the inner server's
address on a gateway). Never everyone (CONVENTIONS habit 11). The ``relay`` check (:mod:`.checks`) also
lets authenticated users relay."""

from __future__ import annotations

import ipaddress
import time

from dizimail.interfaces import RoutingStore
from dizimail.model.errors import InvalidInput
from dizimail.services.access import client_address

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
CACHE_SECONDS = 2.0  # an operator's change reaches running sessions within this


def parse_network(text: str, *, allow_everyone: bool = False) -> Network:
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as exc:
        raise InvalidInput("bad_network", text) from exc
    if network.prefixlen == 0 and not allow_everyone:
        raise InvalidInput("open_relay_refused", text)
    return network


class RelayNetworks:
    def __init__(self, trusted: list[str], routing: RoutingStore, *, allow_everyone: bool = False) -> None:
        self.configured = [parse_network(n, allow_everyone=allow_everyone) for n in trusted]
        self.routing = routing
        self.allow_everyone = allow_everyone
        self._listed: list[Network] = []
        self._at = 0.0

    async def networks(self) -> list[Network]:
        now = time.monotonic()
        if now - self._at > CACHE_SECONDS:
            listed = []
            for text in await self.routing.list_relay_networks():
                try:
                    listed.append(parse_network(text, allow_everyone=self.allow_everyone))
                except InvalidInput:
                    continue  # a row an older version let in; never widen relaying because of it
            self._listed, self._at = listed, now
        return self.configured + self._listed

    async def listed(self) -> tuple[list[str], list[str]]:
        """The networks from config (``smtp.trusted_networks``) and those the operator added."""
        return [str(n) for n in self.configured], await self.routing.list_relay_networks()

    async def may_relay(self, ip: str) -> bool:
        addr = client_address(ip)  # an IPv4-mapped IPv6 peer is its IPv4 address, as for the lists
        if addr is None:
            return False
        return any(addr in net for net in await self.networks())

    async def allow(self, text: str) -> str:
        network = parse_network(text, allow_everyone=self.allow_everyone)
        await self.routing.add_relay_network(str(network))
        self._at = 0.0
        return str(network)

    async def remove(self, text: str) -> None:
        network = parse_network(text, allow_everyone=True)
        await self.routing.remove_relay_network(str(network))
        self._at = 0.0
