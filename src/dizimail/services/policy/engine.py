"""The policy engine: runs the configured checks of a stage, in order, and returns one verdict."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace

from dizimail.config.schema import CORE_CHECKS, Config
from dizimail.model.outbound import DkimKey
from dizimail.services.access import AccessLists
from dizimail.services.antivirus import VirusScanner
from dizimail.services.clientdns import ReverseDns, SpfChecker
from dizimail.services.content.filter import ContentFilter
from dizimail.services.content.settings import SpamSettings
from dizimail.services.content.whitelist import AutoWhitelist
from dizimail.services.dkim import DkimService
from dizimail.services.dnsbl import Dnsbl
from dizimail.services.ingest import Envelope
from dizimail.services.lists.addresses import ListKeys
from dizimail.services.lists.manage import MailingLists
from dizimail.services.msgauth import MessageAuth
from dizimail.services.policy.authn import MessageAuthCheck
from dizimail.services.policy.checks import (
    AuthRequired,
    Check,
    HopCount,
    MailLoop,
    MaySendAs,
    MessageFormat,
    Quota,
    Recipient,
    RecipientLimit,
    Relay,
    RoutingTrick,
    Size,
)
from dizimail.services.policy.content import ContentCheck
from dizimail.services.policy.facts import Client, Facts, MessageFacts
from dizimail.services.policy.gateway import VerdictHeaders
from dizimail.services.policy.identity import HeloCheck, IprevCheck, PregreetCheck, SpfCheck
from dizimail.services.policy.lists import ListPost
from dizimail.services.policy.network import BlockList, ConnectionRateCheck, DnsblCheck, NetworkFacts
from dizimail.services.policy.quota import QuotaRule
from dizimail.services.policy.relay import RelayNetworks
from dizimail.services.policy.verdict import ACCEPT, Finding, Stage, Verdict
from dizimail.services.policy.virus import AntivirusCheck
from dizimail.services.routing import Resolution, Router

log = logging.getLogger("dizimail.policy")


@dataclass(frozen=True, slots=True)
class RcptDecision:
    verdict: Verdict
    resolution: Resolution
    findings: tuple[Finding, ...] = ()  # what counts for this recipient alone (their own allow list): the
    # caller adds it to the envelope's findings with the recipient


class Policy:
    """Every way in asks here: the SMTP session at each stage, and the submitter (DSNs, the fetcher,
    later webmail and the importers) for the recipients and the message it is about to ingest."""

    def __init__(self, config: Config, router: Router, networks: RelayNetworks, dkim: DkimService,
                 lists: AccessLists, dnsbl: Dnsbl, rdns: ReverseDns, spf: SpfChecker, auth: MessageAuth,
                 content: ContentFilter, whitelist: AutoWhitelist, settings: SpamSettings,
                 scanner: VirusScanner | None, mailing_lists: MailingLists | None = None,
                 list_keys: ListKeys | None = None) -> None:
        self.router = router
        self.dkim = dkim
        self.quota = QuotaRule(config.policy.quota_grace)
        self.max_size = config.limits.max_message_size
        checks: list[Check] = [
            AuthRequired(), MaySendAs(router), Size(config.limits), RecipientLimit(config.limits), Recipient(),
            RoutingTrick(networks), Relay(networks), Quota(self.quota), MessageFormat(config.limits, config.smtp),
            HopCount(config.policy), MailLoop(config.policy), ListPost(mailing_lists, list_keys)]
        shared = NetworkFacts(lists, networks, config.antispam.exempt_networks)
        antispam = config.antispam
        self.pregreet = PregreetCheck(shared, antispam)
        checks += [ConnectionRateCheck(shared, antispam.max_connection_rate), BlockList(shared),
                   DnsblCheck(shared, dnsbl), self.pregreet, IprevCheck(shared, antispam, rdns),
                   HeloCheck(shared, antispam, router, config.server.hostname), SpfCheck(shared, antispam, spf),
                   MessageAuthCheck(shared, antispam, auth), ContentCheck(shared, antispam, content, whitelist, settings),
                   AntivirusCheck(scanner, config.antivirus.action == "quarantine"),
                   VerdictHeaders(antispam, config.server.hostname)]
        registry = {check.name: check for check in checks}
        assert set(registry) == set(CORE_CHECKS), "config.schema.CORE_CHECKS names every check"
        actions = config.policy.actions
        self._table: dict[Stage, list[tuple[Check, str]]] = {
            stage: [(registry[name], actions.get(name, "default")) for name in config.policy.checks
                    if stage in registry[name].stages] for stage in Stage}

    async def decide(self, facts: Facts) -> Verdict:
        """The first refusal of the stage's checks in table order, else accept. A check set to
        ``tempfail`` refuses temporarily; one set to ``log`` only says what it would have done. Findings
        of scoring checks go to ``facts.findings``; a check set to ``reject`` refuses with a negative
        finding's refusal, and an enforced finding (DMARC p=reject) refuses unless the check is ``log``."""
        for check, action in self._table[facts.stage]:
            verdict = await check.evaluate(facts)
            if verdict is None:
                continue
            if verdict.accepted:
                facts.findings.extend(verdict.findings)
                refusal = next((f.refusal for f in verdict.findings if f.refusal is not None and (
                    action == "reject" or (f.enforced and action != "log"))), None)
                if refusal is None:
                    continue
                verdict = refusal
            verdict = replace(verdict, check=check.name)
            if action == "log":
                log.info("policy.would_refuse check=%s stage=%s ip=%s code=%d reason=%s", check.name, facts.stage,
                         facts.client.ip, verdict.code, verdict.reason)
                continue
            if action == "tempfail":
                verdict = verdict.softened()
            log.info("policy.refused check=%s stage=%s ip=%s code=%d reason=%s", check.name, facts.stage,
                     facts.client.ip, verdict.code, verdict.reason)
            return verdict
        return ACCEPT

    # --- the stages ----------------------------------------------------------------
    async def connect(self, client: Client, findings: list[Finding] | None = None) -> Verdict:
        return await self.decide(Facts(Stage.CONNECT, client, findings=_list(findings)))

    async def pregreet_wait(self, client: Client) -> float:
        """How long the SMTP session holds the greeting's last line (0: it greets at once)."""
        if not self._table[Stage.GREET]:
            return 0.0
        return await self.pregreet.wait(client)

    async def greeted(self, client: Client, early: int, findings: list[Finding] | None = None) -> Verdict:
        """After the held greeting: ``early`` bytes came before its end."""
        return await self.decide(Facts(Stage.GREET, client, early=early, findings=_list(findings)))

    async def helo(self, client: Client, findings: list[Finding] | None = None) -> Verdict:
        return await self.decide(Facts(Stage.HELO, client, findings=_list(findings)))

    async def mail(self, client: Client, sender: str, params: Mapping[str, str | None],
                   findings: list[Finding] | None = None) -> Verdict:
        return await self.decide(Facts(Stage.MAIL, client, sender=sender, params=params, findings=_list(findings)))

    async def rcpt(self, client: Client, envelope: Envelope, address: str, shown: str,
                   params: Mapping[str, str | None]) -> RcptDecision:
        """Resolve ``address`` (lower-case) and decide; the caller adds an accepted one to ``envelope``
        with :meth:`Envelope.add`."""
        resolution = await self.router.resolve(address)
        facts = Facts(Stage.RCPT, client, sender=envelope.sender, params=params, recipients=envelope.count,
                      rcpt=address, shown=shown, resolution=resolution)
        verdict = await self.decide(facts)
        return RcptDecision(verdict, resolution, tuple(f for f in facts.findings if ("rcpt", address) in f.properties))

    async def data(self, client: Client, envelope: Envelope, message: MessageFacts,
                   findings: list[Finding] | None = None) -> Verdict:
        domains = tuple(dict.fromkeys(r.rpartition("@")[2] for r, _ in [*envelope.local, *envelope.hold]))
        return await self.decide(Facts(Stage.DATA, client, sender=envelope.sender, params=envelope.params,
                                       recipients=envelope.count, message=message, rcpt_domains=domains,
                                       rcpt_addresses=tuple(envelope.addresses()),
                                       findings=_list(findings)))

    # --- decisions that are not refusals ----------------------------------------------
    def max_message_size(self, client: Client) -> int:
        """What a client may send (SIZE in EHLO; the stream is cut off past it)."""
        return self.max_size

    async def signing_key(self, client: Client, envelope: Envelope) -> DkimKey | None:
        """Submitted mail (a logged-in sender) with remote recipients is DKIM-signed with the key of the
        sender's domain, once, at ingest (RFC 6376)."""
        if client.account is None or not envelope.remote or not envelope.sender:
            return None
        return await self.dkim.key_for(envelope.sender)


def _list(findings: list[Finding] | None) -> list[Finding]:
    return findings if findings is not None else []
