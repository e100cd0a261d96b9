"""Anti-spam layer 2, who the client says it is (DESIGN.md §5): reverse DNS, HELO, SPF.

Each finding adds its weight (``antispam.weights``, defaults in config.schema.DEFAULT_WEIGHTS) to the
message's spam score and, for iprev and SPF, its result to the Authentication-Results header written
at ingest. None refuses by default; ``policy.actions = { spf = "reject" }`` (or iprev, helo) makes a
finding against the client refuse with the RFC 7372 code. Port-25 clients only, and not those the
network layer exempts (logged-in users, relay networks, ``antispam.exempt_networks``).
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections import OrderedDict

from dizimail.config.schema import AntispamConfig
from dizimail.model.access import ListName
from dizimail.services.clientdns import ReverseDns, SpfChecker
from dizimail.services.policy.checks import Check
from dizimail.services.policy.facts import Client, Facts, Mode
from dizimail.services.policy.network import NetworkFacts
from dizimail.services.policy.verdict import Finding, Stage, Verdict, found, reject, tempfail
from dizimail.services.routing import Router

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
SPF_REFUSALS = {
    "fail": reject(550, "5.7.23", "spf_failed", "SPF fail"),
    "temperror": tempfail(451, "4.7.24", "spf_error", "SPF temperror"),
    "permerror": reject(550, "5.7.24", "spf_error", "SPF permerror"),
}


class Layer2(Check):
    """Base of the layer-2 checks: who they judge (port-25 clients the network layer does not exempt)."""

    def __init__(self, shared: NetworkFacts, config: AntispamConfig) -> None:
        self.shared = shared
        self.config = config

    async def judged(self, facts: Facts) -> bool:
        return await self.judges(facts.client)

    async def judges(self, client: Client) -> bool:
        return (client.mode is Mode.MX and not self.shared.trusted(client)
                and not await self.shared.exempt_network(client))


class PregreetCheck(Layer2):
    """Early talkers (postscreen's pregreet test): the greeting's first line goes out alone (``220-``),
    and a client that sends anything before its last line did not wait for the server, as RFC 5321
    §4.3.1 says it must; bulk mailing software does that to save time. A client that waited is not
    held again for :data:`PASS_TTL`; allow-listed clients are never held. Scores ``pregreet.fail``;
    set to ``reject``, such a client's first command is refused and it is disconnected."""

    name = "pregreet"
    stages = frozenset({Stage.GREET})
    PASS_TTL = 86400.0
    MAX_PASSED = 100_000

    def __init__(self, shared: NetworkFacts, config: AntispamConfig) -> None:
        super().__init__(shared, config)
        self.passed: OrderedDict[str, float] = OrderedDict()  # client address → when it last waited

    async def wait(self, client: Client) -> float:
        """How long to hold this client's greeting (0: not tested)."""
        if self.config.pregreet_wait <= 0 or not await self.judges(client):
            return 0.0
        when = self.passed.get(client.ip)
        if when is not None and time.monotonic() - when < self.PASS_TTL:
            return 0.0
        if await self.shared.lists.match(ListName.ALLOW, "", ip=client.ip) is not None:
            return 0.0
        return self.config.pregreet_wait

    async def evaluate(self, facts: Facts) -> Verdict | None:
        if facts.early is None:
            return None
        ip = facts.client.ip
        if not facts.early:
            self.passed[ip] = time.monotonic()
            self.passed.move_to_end(ip)
            while len(self.passed) > self.MAX_PASSED:
                self.passed.popitem(last=False)
            return None
        self.passed.pop(ip, None)
        why = f"{ip} sent {facts.early} bytes before the greeting"
        return found(Finding(self.name, self.config.weight("pregreet.fail"), why, result="fail",
                             refusal=reject(554, "5.5.1", "pregreet", why)))


class IprevCheck(Layer2):
    """Forward-confirmed reverse DNS of the client (RFC 8601 §3.2), at connect: its name also goes into
    the Received header."""

    name = "iprev"
    stages = frozenset({Stage.CONNECT})

    def __init__(self, shared: NetworkFacts, config: AntispamConfig, rdns: ReverseDns) -> None:
        super().__init__(shared, config)
        self.rdns = rdns

    async def evaluate(self, facts: Facts) -> Verdict | None:
        if not await self.judged(facts):
            return None
        ip = facts.client.ip
        result = await self.rdns.iprev(ip)
        props = (("policy.iprev", ip),)
        if result.result == "pass":
            return found(Finding(self.name, 0.0, f"{ip} is {result.name}", "iprev", "pass", props, result.name))
        if result.result == "temperror":
            return found(Finding(self.name, self.config.weight("iprev.temperror"), f"reverse DNS of {ip} did not answer",
                                 "iprev", "temperror", props,
                                 refusal=tempfail(421, "4.7.25", "iprev_failed", "iprev temperror", ip=ip)))
        why = (f"{ip}'s reverse DNS name {result.name} does not lead back to it" if result.name
               else f"{ip} has no reverse DNS name")
        return found(Finding(self.name, self.config.weight("iprev.fail"), why, "iprev", "fail", props, result.name,
                             refusal=reject(554, "5.7.25", "iprev_failed", why, ip=ip)))


class HeloCheck(Layer2):
    """The HELO/EHLO name (RFC 5321 §4.1.1.1): a fully qualified domain or an address literal (the
    client's own address), and not a name of this server or of a domain it serves."""

    name = "helo"
    stages = frozenset({Stage.HELO})

    def __init__(self, shared: NetworkFacts, config: AntispamConfig, router: Router, hostname: str) -> None:
        super().__init__(shared, config)
        self.router = router
        self.hostname = hostname.lower().rstrip(".")

    async def evaluate(self, facts: Facts) -> Verdict | None:
        helo = (facts.client.helo or "").strip()
        if not helo or not await self.judged(facts):
            return None
        if helo.startswith("[") and helo.endswith("]"):
            literal = helo[1:-1].removeprefix("IPv6:").removeprefix("ipv6:")
            try:
                same = ipaddress.ip_address(literal) == ipaddress.ip_address(facts.client.ip)
            except ValueError:
                return self._finding("helo.not_fqdn", f"HELO {helo} is not an address literal")
            return None if same else self._finding("helo.literal_mismatch", f"HELO {helo} is not the client's address")
        name = helo.lower().rstrip(".")
        if "." not in name or not all(_LABEL.fullmatch(label) for label in name.split(".")):
            return self._finding("helo.not_fqdn", f"HELO {helo[:100]} is not a fully qualified domain name")
        if name == self.hostname or await self.router.is_ours(name):
            return self._finding("helo.ours", f"HELO {name} is this server's own name")
        return None

    def _finding(self, key: str, why: str) -> Verdict:
        return found(Finding(self.name, self.config.weight(key), why,
                             refusal=reject(550, "5.7.1", "helo_refused", why)))


class SpfCheck(Layer2):
    """SPF of the MAIL FROM domain, or of the HELO name for the null sender (RFC 7208 §2.4)."""

    name = "spf"
    stages = frozenset({Stage.MAIL})

    def __init__(self, shared: NetworkFacts, config: AntispamConfig, checker: SpfChecker) -> None:
        super().__init__(shared, config)
        self.checker = checker

    async def evaluate(self, facts: Facts) -> Verdict | None:
        if not await self.judged(facts):
            return None
        helo = facts.client.helo or ""
        result, explanation = await self.checker.check(facts.client.ip, facts.sender, helo)
        if result not in ("pass", "fail", "softfail", "neutral", "none", "permerror", "temperror"):
            result = "permerror"
        identity = ("smtp.mailfrom", facts.sender) if facts.sender else ("smtp.helo", helo)
        why = f"SPF {result} for {identity[1]} from {facts.client.ip}" + (f": {explanation}" if explanation else "")
        score = 0.0 if result == "pass" else self.config.weight(f"spf.{result}")
        refusal = SPF_REFUSALS.get(result)
        return found(Finding(self.name, score, why, "spf", result, (identity,),
                             refusal=refusal if refusal is None else _with_args(refusal, why, facts.sender)))


def _with_args(verdict: Verdict, reason: str, sender: str) -> Verdict:
    return Verdict(verdict.action, verdict.code, verdict.enhanced, verdict.key, {"sender": sender}, reason=reason)
