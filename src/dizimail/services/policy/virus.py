"""The virus scan in the policy table (DESIGN.md §5): every message, from every client (logged-in users
and trusted networks too; no allow entry or whitelist skips it), at the end of DATA, before the spam
checks. Infected: refused, 554 5.7.1 naming what was found (or, with ``antivirus.action = quarantine``,
taken and held: services.quarantine). Fetched mail (modes ``fetch`` and ``poll``) has no client to
refuse, and a bounce would go to a forged sender: an infected fetched message is always held. Not
scanned (clamd down, slow, erring): tempfailed, 451 4.7.1, never taken (a fetched message stays on
the remote side for the next run). Both are enforced unless the check is set to ``log``."""

from __future__ import annotations

from dizimail.services.antivirus import VirusScanner
from dizimail.services.policy.checks import Check
from dizimail.services.policy.facts import Facts, Mode
from dizimail.services.policy.verdict import Finding, Stage, Verdict, found, reject, tempfail


class AntivirusCheck(Check):
    name = "antivirus"
    stages = frozenset({Stage.DATA})

    def __init__(self, scanner: VirusScanner | None, quarantine: bool = False) -> None:
        self.scanner = scanner
        self.quarantine = quarantine

    async def evaluate(self, facts: Facts) -> Verdict | None:
        message = facts.message
        if self.scanner is None or message is None or message.too_big or message.read is None:
            return None
        result = await self.scanner.scan(await message.read())
        if result.status == "clean":
            return found(Finding(self.name, 0.0, f"clean ({self.scanner.address})", result="clean"))
        if result.status == "infected":
            why = f"virus {result.virus}"
            if self.quarantine or facts.client.mode in (Mode.FETCH, Mode.POLL):
                return found(Finding(self.name, 0.0, why, result="infected", quarantine=why))
            return found(Finding(self.name, 0.0, why, result="infected", refusal=reject(554, "5.7.1", "virus_found", why,
                                                                       virus=result.virus[:100]), enforced=True))
        why = f"not scanned: {result.detail}"
        return found(Finding(self.name, 0.0, why, refusal=tempfail(451, "4.7.1", "virus_scan_unavailable", why),
                             enforced=True))
