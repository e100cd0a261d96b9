"""The automatic whitelist (anti-spam layer 3): a sender a local user has written to, or one that sent
``antispam.whitelist_after`` clean messages to a domain, skips the content filter for that domain's
recipients. Never the network and session layers, never the virus scan; and only when DMARC passed
for its From: address (SPF or DKIM aligned), so a forged sender cannot ride it.

An entry goes when a user of the domain moves a message from that sender into Junk (a partner's
hijacked account sending spam is filtered again from then on), and after ``antispam.whitelist_keep``
without a clean message or a user writing to the sender (the node's sweeper)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from dizimail.interfaces.bayes import WhitelistStore

log = logging.getLogger("dizimail.antispam")


class AutoWhitelist:
    def __init__(self, store: WhitelistStore, clean_needed: int, keep: float = 0.0) -> None:
        self.store = store
        self.clean_needed = clean_needed
        self.keep = keep
        self.tasks: set[asyncio.Task[None]] = set()

    async def trusted(self, sender: str, domains: Sequence[str]) -> str | None:
        """Why ``sender`` (an authenticated From: address) skips the content filter, or None."""
        if self.clean_needed <= 0 or not sender or not domains:
            return None
        for domain, (clean, written) in (await self.store.awl_get(sender.lower(), domains)).items():
            if written:
                return f"{sender}: a user of {domain} wrote to it"
            if clean >= self.clean_needed:
                return f"{sender}: {clean} clean messages to {domain}"
        return None

    async def revoke(self, senders: Sequence[str], domain: str) -> None:
        """A user of ``domain`` called mail from ``senders`` spam: they are filtered again there."""
        removed = await self.store.awl_remove([(s.lower(), domain.lower()) for s in senders])
        if removed:
            log.info("whitelist.revoked senders=%s domain=%s", ",".join(senders)[:200], domain)

    async def expire(self, now: float | None = None) -> int:
        """Forget senders not seen for ``keep`` seconds (0: never)."""
        if self.keep <= 0:
            return 0
        removed = await self.store.awl_expire((time.time() if now is None else now) - self.keep)
        if removed:
            log.info("whitelist.expired removed=%d", removed)
        return removed

    def observe(self, *, written: Sequence[tuple[str, str]] = (), clean: Sequence[tuple[str, str]] = ()) -> None:
        """Record (sender, domain) pairs in the background (nothing waits for it; a count lost in a crash
        only delays a whitelisting)."""
        if not written and not clean:
            return
        task = asyncio.get_running_loop().create_task(self._record(list(written), list(clean)))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _record(self, written: list[tuple[str, str]], clean: list[tuple[str, str]]) -> None:
        try:
            if written:
                await self.store.awl_add([(s.lower(), d.lower()) for s, d in written], written=True)
            if clean:
                await self.store.awl_add([(s.lower(), d.lower()) for s, d in clean], clean=1)
        except Exception:
            log.exception("whitelist.record.failed")
