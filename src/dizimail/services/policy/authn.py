"""Anti-spam layer 2, whether the message is what it claims (DESIGN.md §5): DKIM, ARC and DMARC at the
end of DATA (services.msgauth, in a worker thread).

DKIM and ARC only report (and a broken DKIM signature adds a little: mailing lists break them); DMARC
fails when neither SPF nor DKIM passed for a domain aligned with the From: domain. Then the domain
owner's policy is honoured: ``p=reject`` refuses with 550 5.7.1 (unless the check is set to ``log``
or the domain is in ``antispam.dmarc_override``: then it scores as ``dmarc.reject``),
``p=quarantine`` scores ``dmarc.quarantine`` (enough for the Junk folder once the content layer
delivers there), ``p=none`` scores ``dmarc.fail``.
"""

from __future__ import annotations

import asyncio

from dizimail.codec.mime.headers import split_header
from dizimail.config.schema import AntispamConfig
from dizimail.services.msgauth import DkimResult, DmarcResult, MessageAuth
from dizimail.services.policy.facts import Facts
from dizimail.services.policy.identity import Layer2
from dizimail.services.policy.network import NetworkFacts
from dizimail.services.policy.verdict import Finding, Stage, Verdict, found, reject

# The largest header section whose DKIM and ARC signatures are verified (Postfix's header_size_limit):
# dkimpy's parser is quadratic in continuation lines (a 720 KB header took 2.7 s, 16 MiB would take
# half an hour), and no real mail carries a header this size. Above it: dkim=policy (signed, not
# verified by local policy), the reason in the verdict.
MAX_VERIFY_HEADER = 100 * 1024


class MessageAuthCheck(Layer2):
    """DKIM, ARC and DMARC in one check (one read of the message, one thread hop; DMARC needs the
    other two's results): three findings, named ``dkim``, ``arc`` and ``dmarc`` in the header."""

    name = "dmarc"
    stages = frozenset({Stage.DATA})

    def __init__(self, shared: NetworkFacts, config: AntispamConfig, auth: MessageAuth) -> None:
        super().__init__(shared, config)
        self.auth = auth
        self.override = {d.lower().rstrip(".") for d in config.dmarc_override}

    async def evaluate(self, facts: Facts) -> Verdict | None:
        message = facts.message
        if message is None or message.read is None or message.too_big or not await self.judged(facts):
            return None
        if message.size > self.config.max_verify_size:
            return found(Finding("dkim", 0.0, f"not verified: {message.size} octets", "dkim", "none"))
        data = await message.read()
        spf = next(((f.result, f.properties[0][1]) for f in reversed(facts.findings) if f.method == "spf"), ("none", ""))
        spf = (spf[0], spf[1].rpartition("@")[2])
        dkim_results, arc, dmarc = await asyncio.to_thread(self._verify, data, spf)
        findings = [self._dkim(r) for r in dkim_results] or [
            Finding("dkim", 0.0, "no DKIM signature", "dkim", "none")]
        if arc != "none":
            findings.append(Finding("arc", self.config.weight("arc.fail") if arc == "fail" else 0.0,
                                    f"ARC chain {arc}", "arc", arc))
        findings.append(self._dmarc(dmarc))
        return found(*findings)

    def _verify(self, data: bytes, spf: tuple[str, str]) -> tuple[list[DkimResult], str, DmarcResult]:
        # dkimpy parses the whole message even when it carries no signature: most mail is looked at by
        # our own header splitter first (linear, no copy), and only signed mail goes to it.
        block = split_header(data)
        if block.end > MAX_VERIFY_HEADER:  # dkimpy joins continuation lines with bytes += (quadratic)
            why = f"header section of {block.end} octets: over {MAX_VERIFY_HEADER} not verified"
            return [DkimResult("policy", "", "", why)], "none", self.auth.dmarc(data, spf, [])  # RFC 8601 §2.7.1
        names = {f.name for f in block.fields}
        results = self.auth.dkim(data) if "dkim-signature" in names else []
        arc = self.auth.arc(data) if "arc-seal" in names or "arc-message-signature" in names else "none"
        return results, arc, self.auth.dmarc(data, spf, results)

    def _dkim(self, r: DkimResult) -> Finding:
        props = tuple((k, v) for k, v in (("header.d", r.domain), ("header.s", r.selector)) if v)
        score = self.config.weight(f"dkim.{r.result}") if r.result in ("fail", "permerror") else 0.0
        why = f"DKIM {r.result} for d={r.domain or '?'} s={r.selector or '?'}" + (f": {r.reason}" if r.reason else "")
        return Finding("dkim", score, why, "dkim", r.result, props)

    def _dmarc(self, r: DmarcResult) -> Finding:
        props = (("header.from", r.domain),) if r.domain else ()
        why = f"DMARC {r.result} for {r.domain or '?'}" + (f" (p={r.policy})" if r.result == "fail" else "") + \
            (f": {r.reason}" if r.reason else "")
        if r.result == "permerror":
            return Finding("dmarc", self.config.weight("dmarc.permerror"), why, "dmarc", "permerror", props)
        if r.result != "fail":
            return Finding("dmarc", 0.0, why, "dmarc", r.result, props)
        comment = f"p={r.policy}"
        if r.policy == "reject":
            refusal = reject(550, "5.7.1", "dmarc_reject", why, domain=r.domain)
            overridden = r.domain in self.override
            return Finding("dmarc", self.config.weight("dmarc.reject"), why + (" [override]" if overridden else ""),
                           "dmarc", "fail", props, comment, refusal=refusal, enforced=not overridden)
        key = "dmarc.quarantine" if r.policy == "quarantine" else "dmarc.fail"
        return Finding("dmarc", self.config.weight(key), why, "dmarc", "fail", props, comment)
