"""Anti-spam layer 4 in the policy table: the content filter's score as a finding, and the one decision
the spam score makes at DATA: refusal from ``antispam.reject_at`` (the sender is told; nothing silently
vanishes), or held in the quarantine with ``antispam.reject_action = quarantine``. Tagging and the Junk folder are the ingest's (services.policy.report.SpamRule), on the same
total: the content score plus every other finding's points, at most 10.

Mail fetched from a user's external mailbox (mode ``fetch``) is judged too, by content alone (no SMTP
client to look at), and is never refused: refusing it would bounce to a sender who is most likely
forged (backscatter). From ``reject_at`` it goes to the Junk folder, or to the quarantine with
``reject_action = quarantine``."""

from __future__ import annotations

from dizimail.config.schema import AntispamConfig
from dizimail.services.content.filter import ContentFilter
from dizimail.services.content.settings import SpamSettings
from dizimail.services.content.whitelist import AutoWhitelist
from dizimail.services.msgauth import from_addresses
from dizimail.services.policy.facts import Client, Facts, Mode
from dizimail.services.policy.identity import Layer2
from dizimail.services.policy.network import NetworkFacts
from dizimail.services.policy.report import GLOBAL_MODEL, PERSONAL, findings_for, printable, total
from dizimail.services.policy.verdict import Finding, Stage, Verdict, found, reject

MAX_PERSONAL = 20


class ContentCheck(Layer2):
    name = "content"
    stages = frozenset({Stage.DATA})

    def __init__(self, shared: NetworkFacts, config: AntispamConfig, content: ContentFilter,
                 whitelist: AutoWhitelist, settings: SpamSettings) -> None:
        super().__init__(shared, config)
        self.content = content
        self.whitelist = whitelist
        self.settings = settings

    async def judges(self, client: Client) -> bool:
        return client.mode is Mode.FETCH or await super().judges(client)

    async def evaluate(self, facts: Facts) -> Verdict | None:
        message = facts.message
        if message is None or message.read is None or message.too_big or not await self.judged(facts):
            return None
        findings: list[Finding] = []
        small = message.size <= self.config.max_verify_size
        trusted = await self._whitelisted(facts, findings) if small else None
        if small and trusted is None:
            findings += await self._scores(facts, await message.read())
        recipients = facts.rcpt_addresses or ("",)
        totals = {r: total(findings_for([*facts.findings, *findings], r)) for r in recipients}
        levels = {r: await self.settings.levels(r) if r else self.settings.default for r in recipients}
        # Refused (or held) only when every recipient's threshold says so: one message, one answer at DATA;
        # the recipients whose threshold it did not reach get it (in Junk from theirs, as the ingest decides).
        if all(totals[r] >= levels[r].reject_at for r in recipients):
            points = min(totals.values())
            why = f"spam score {points:.1f} >= {max(lv.reject_at for lv in levels.values()):g}"
            if self.config.reject_action == "quarantine":
                findings.append(Finding(self.name, 0.0, why, quarantine=why))
            elif facts.client.mode is Mode.FETCH:
                pass  # delivered, to the Junk folder by the same total (the ingest's SpamRule)
            else:
                findings.append(Finding(self.name, 0.0, why, refusal=reject(550, "5.7.1", "spam_rejected", why),
                                        enforced=True))
        return found(*findings) if findings else None

    async def _scores(self, facts: Facts, data: bytes) -> list[Finding]:
        """The global model's score, and each recipient's own model's if they have one that learnt enough
        (tokenised once). At most MAX_PERSONAL personal models per message: a sender listing many such
        recipients gets the rest judged by the global model, not a scoring run each."""
        least = self.config.content_min_trained
        names: list[str] = []
        personal = [r for r in facts.rcpt_addresses if await self.settings.personal(r)][:MAX_PERSONAL]
        for name in ("", *personal):
            nspam, nham = await self.content.trained(name)
            if nspam >= least and nham >= least:
                names.append(name)
        if not names:
            return []
        findings = []
        for name, (points, clues) in zip(names, await self.content.score_many(data, names), strict=True):
            spammy = [printable(t) for p, t in clues if p > 0.5][:5]
            hammy = [printable(t) for p, t in clues if p < 0.5][:3]
            why = (("personal " if name else "") + f"content {points:.1f}" +
                   (f": spam tokens {', '.join(spammy)}" if spammy else "") +
                   (f"; ham tokens {', '.join(hammy)}" if hammy else ""))
            findings.append(Finding(self.name, round(points, 1), why, result=PERSONAL if name else GLOBAL_MODEL,
                                    properties=(("rcpt", name),) if name else ()))
        return findings

    async def _whitelisted(self, facts: Facts, findings: list[Finding]) -> str | None:
        """Layer 3: with DMARC passed for a single From: address, whether it skips the content filter. The
        address goes on a finding either way (the ingest counts its clean messages)."""
        if not any(f.method == "dmarc" and f.result == "pass" for f in facts.findings):
            return None
        assert facts.message is not None and facts.message.read is not None
        senders = set(from_addresses(await facts.message.read()))
        if len(senders) != 1:
            return None
        sender = senders.pop()
        why = await self.whitelist.trusted(sender, facts.rcpt_domains)
        findings.append(Finding("whitelist", 0.0, why or f"{sender}: not (yet) whitelisted",
                                properties=(("from", sender),)))
        return why
