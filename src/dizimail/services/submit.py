"""Messages we write ourselves (DSNs, fetched mail, later alarms and webmail) enter like SMTP mail.

:func:`Submitter.submit` resolves each recipient through the router (local
accounts, aliases, hold routes, remote) and commits through ``services.ingest``
(CONVENTIONS habit 2: one way in).
"""

from __future__ import annotations

import logging

from dizimail.model.errors import NotFound
from dizimail.model.types import CommitResult, QueuedRecipient
from dizimail.services.ingest import Envelope, Ingest
from dizimail.services.routing import Router

log = logging.getLogger("dizimail.submit")


class Submitter:
    def __init__(self, ingest: Ingest, router: Router) -> None:
        self.ingest = ingest
        self.router = router

    async def envelope(self, sender: str, recipients: list[str]) -> tuple[Envelope, list[str]]:
        """The envelope for ``recipients``, and those that resolve to nothing (unknown, disabled)."""
        env = Envelope(sender=sender)
        refused: list[str] = []
        for rcpt in recipients:
            address = rcpt.lower()
            res = await self.router.resolve(address)
            if res.kind == "hold":
                env.hold.extend((address, a) for a in res.accounts)
            elif res.kind in ("local", "remote"):
                for acc in res.accounts:
                    if all(a.id != acc.id for _, a in env.local):
                        env.local.append((address, acc))
                for remote in res.remote:
                    if all(r.address != remote for r in env.remote):
                        env.remote.append(QueuedRecipient(remote))
            else:
                refused.append(rcpt)
        return env, refused

    async def submit(self, sender: str, recipients: list[str], data: bytes, *, protocol: str = "local",
                     fetched: tuple[int, str] | None = None) -> CommitResult:
        env, refused = await self.envelope(sender, recipients)
        env.fetched = fetched
        if not (env.local or env.remote or env.hold):
            raise NotFound("unknown_user", ", ".join(refused))
        reception = self.ingest.begin()
        reception.write(self.ingest.received_header(reception, helo=self.ingest.hostname, client_ip="127.0.0.1",
                                                    client_name="localhost", protocol=protocol,
                                                    recipient=recipients[0] if len(recipients) == 1 else None,
                                                    tls=None))
        reception.write(data)
        return await self.ingest.commit(reception, env)
