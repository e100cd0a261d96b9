"""Anti-spam layer 1, the network (DESIGN.md §5): connection rate, block and allow lists, DNSBLs.

Who is never judged here: logged-in users, this system's own messages (``local``), and for the DNSBL
and the rate also relay networks (the inner server on a gateway) and ``antispam.exempt_networks``
(loopback and the private ranges by default). An explicit block entry holds for every client that
is not logged in.

An allow entry (``dizimail allow``: an address or network, a sender or a domain's senders; for the
whole server or a domain's recipients) lets a client past the block lists, the DNSBLs and the rate
(and, with later layers, the content filter), never past the relay rules or the virus scan. The
global allow list overrides every block; a domain's allow list overrides that domain's block list and
the DNSBLs for its recipients (a global block of a sender is decided at MAIL, before any recipient).

Decisions:

- connect: over ``antispam.max_connection_rate`` → 421 4.7.0 (the client comes back later);
  a global block entry for its address → 554 5.7.1 greeting (RFC 5321 §3.1).
- MAIL: a global block entry for the sender → 550 5.7.1.
- RCPT: a block entry of the recipient's domain (address or sender) → 550 5.7.1 for that recipient;
  a DNSBL listing → 554 5.7.1, naming the list (as Postfix's reject_rbl_client).
"""

from __future__ import annotations

import ipaddress
import time

from dizimail.model.access import ListName
from dizimail.model.errors import InvalidInput
from dizimail.services.access import AccessLists, Hit, client_address, normalize_domain, personal_scope
from dizimail.services.dnsbl import Dnsbl
from dizimail.services.limits import ConnectionRate
from dizimail.services.policy.checks import Check
from dizimail.services.policy.facts import OWN, Client, Facts, Mode
from dizimail.services.policy.relay import Network, RelayNetworks
from dizimail.services.policy.report import printable
from dizimail.services.policy.verdict import Finding, Stage, Verdict, found, reject, tempfail

PERSONAL_ALLOW = -20.0  # points of a recipient's own allow entry: their copy's score stays at 0


def recipient_scope(rcpt: str) -> str:
    """The list scope a recipient's domain stands for (A-labels, as entries are stored)."""
    try:
        return normalize_domain(rcpt.rpartition("@")[2]) if rcpt else ""
    except InvalidInput:
        return ""


class NetworkFacts:
    """What the layer's checks share: the lists, the exemptions, the relay networks."""

    def __init__(self, lists: AccessLists, relay: RelayNetworks, exempt: list[str]) -> None:
        self.lists = lists
        self.relay = relay
        self.exempt: list[Network] = [ipaddress.ip_network(n, strict=False) for n in exempt]

    @staticmethod
    def trusted(client: Client) -> bool:
        return client.account is not None or client.mode in OWN

    async def exempt_network(self, client: Client) -> bool:
        """A relay network or an exempt one: no DNSBL, no rate."""
        addr = client_address(client.ip)
        if addr is not None and any(addr in net for net in self.exempt):
            return True
        return await self.relay.may_relay(client.ip)

    async def allowed(self, facts: Facts) -> Hit | None:
        """An allow entry for this client or sender: the recipient's own, their domain's, then the global list."""
        own = recipient_scope(facts.rcpt)
        for scope in ([personal_scope(facts.rcpt), own, ""] if own else [""]):
            hit = await self.lists.match(ListName.ALLOW, scope, facts.client.ip, facts.sender)
            if hit is not None:
                return hit
        return None


class ConnectionRateCheck(Check):
    name = "connection-rate"
    stages = frozenset({Stage.CONNECT})

    def __init__(self, shared: NetworkFacts, per_minute: int) -> None:
        self.shared = shared
        self.rate = ConnectionRate(per_minute)

    async def evaluate(self, facts: Facts) -> Verdict | None:
        if self.rate.capacity <= 0 or await self.shared.exempt_network(facts.client):
            return None
        if self.rate.take(facts.client.ip, time.monotonic()):
            return None
        if await self.shared.allowed(facts) is not None:
            return None
        return tempfail(421, "4.7.0", "connection_rate", f"over {int(self.rate.capacity)} connections a minute")


class BlockList(Check):
    name = "block-list"
    stages = frozenset({Stage.CONNECT, Stage.MAIL, Stage.RCPT})

    def __init__(self, shared: NetworkFacts) -> None:
        self.shared = shared

    async def evaluate(self, facts: Facts) -> Verdict | None:
        if self.shared.trusted(facts.client):
            return None
        lists = self.shared.lists
        if facts.stage is Stage.CONNECT:
            blocked = await lists.match(ListName.BLOCK, "", ip=facts.client.ip)
            if blocked is None or await lists.match(ListName.ALLOW, "", ip=facts.client.ip) is not None:
                return None
            return reject(554, "5.7.1", "client_blocked", str(blocked), ip=facts.client.ip)
        if facts.stage is Stage.MAIL:
            blocked = await lists.match(ListName.BLOCK, "", sender=facts.sender)
            if blocked is None or await self.shared.allowed(facts) is not None:
                return None
            return reject(550, "5.7.1", "sender_blocked", str(blocked), sender=facts.sender)
        scope = recipient_scope(facts.rcpt)
        if scope and facts.sender and await lists.match(ListName.BLOCK, personal_scope(facts.rcpt),
                                                         sender=facts.sender) is not None:
            return reject(550, "5.7.1", "blocked_by_recipient", f"{facts.sender} on {facts.rcpt}'s block list",
                          rcpt=facts.shown)  # the user's own word: no allow list overrides it
        blocked = await lists.match(ListName.BLOCK, scope, facts.client.ip, facts.sender) if scope else None
        if blocked is None or await self.shared.allowed(facts) is not None:
            mine = await lists.match(ListName.ALLOW, personal_scope(facts.rcpt), sender=facts.sender) \
                if scope and facts.sender else None
            if mine is None:
                return None
            # the user's own allow list: their copy is neither put in Junk nor refused for its score
            return found(Finding("allow-list", PERSONAL_ALLOW, f"{printable(facts.sender, 100)} on the recipient's "
                                 "allow list", properties=(("rcpt", facts.rcpt.lower()),)))
        return reject(550, "5.7.1", "blocked_for_recipient", str(blocked), rcpt=facts.shown)


class DnsblCheck(Check):
    name = "dnsbl"
    stages = frozenset({Stage.CONNECT, Stage.RCPT})

    def __init__(self, shared: NetworkFacts, dnsbl: Dnsbl) -> None:
        self.shared = shared
        self.dnsbl = dnsbl

    async def evaluate(self, facts: Facts) -> Verdict | None:
        client = facts.client
        if client.mode is not Mode.MX or self.shared.trusted(client) or await self.shared.exempt_network(client):
            return None
        if facts.stage is Stage.CONNECT:
            self.dnsbl.prefetch(client.ip)  # answered by the time RCPT asks
            return None
        listings = await self.dnsbl.listed(client.ip)
        if not listings or await self.shared.allowed(facts) is not None:
            return None
        first = listings[0]
        return reject(554, "5.7.1", "dnsbl_listed", "; ".join(str(x) for x in listings), ip=first.address,
                      zone=first.zone)
