"""Messages this system writes or fetches itself (DSNs, fetched mail, later alarms, webmail and the
importers) enter like SMTP mail: the same policy decides, then ``services.ingest`` commits
(CONVENTIONS habit 2: one way in).

:meth:`Submitter.submit` asks the policy about each recipient (resolved by the router: local accounts,
aliases, hold routes, remote) and about the message (size, hop count, mail loops), as an SMTP session
would at RCPT and at the end of DATA, for a client of mode ``local``, or ``fetch`` / ``poll`` for the
fetcher (services.policy.facts.Mode): every message is virus-scanned like mail over SMTP; the content
filter judges mail fetched from users' external mailboxes, not the system's own.
"""

from __future__ import annotations

import logging

from dizimail.codec.body import TraceCounter
from dizimail.model.errors import NotFound
from dizimail.model.types import Account, CommitResult
from dizimail.services.ingest import Envelope, Ingest
from dizimail.services.policy.engine import Policy
from dizimail.services.policy.facts import Client, MessageFacts, Mode
from dizimail.services.policy.verdict import Refused

log = logging.getLogger("dizimail.submit")


class Submitter:
    def __init__(self, ingest: Ingest, policy: Policy) -> None:
        self.ingest = ingest
        self.policy = policy

    async def envelope(self, client: Client, sender: str, recipients: list[str]) -> tuple[Envelope, list[str]]:
        """The envelope of the recipients the policy accepts, and those it refuses (unknown, disabled ...)."""
        env = Envelope(sender=sender)
        refused: list[str] = []
        for rcpt in recipients:
            address = rcpt.lower()
            decision = await self.policy.rcpt(client, env, address, rcpt, {})
            if decision.verdict.accepted:
                env.add(address, decision.resolution)
                env.findings.extend(decision.findings)
            else:
                refused.append(rcpt)
        return env, refused

    async def submit(self, sender: str, recipients: list[str], data: bytes, *, protocol: str = "local",
                     fetched: tuple[int, str] | None = None, account: Account | None = None,
                     mode: Mode = Mode.LOCAL, release_at: float | None = None) -> CommitResult:
        """Ingest ``data`` for ``recipients``. Raises NotFound when no recipient is accepted, and
        :class:`Refused` when the policy refuses the message itself (too big, a mail loop ...).
        ``release_at``: held in the queue until then (FUTURERELEASE, as ``HOLDUNTIL`` over SMTP)."""
        client = Client("127.0.0.1", mode, account=account)
        env, refused = await self.envelope(client, sender, recipients)
        env.fetched = fetched
        if release_at is not None:
            env.params["RELEASE"] = f"{release_at:.0f}"
        if not env.count:
            raise NotFound("unknown_user", ", ".join(refused))
        trace = TraceCounter(self.ingest.hostname)
        trace.feed(data)
        reception = self.ingest.begin()
        try:
            reception.write(self.ingest.received_header(reception, helo=self.ingest.hostname, client_ip="127.0.0.1",
                                                        client_name="localhost", protocol=protocol,
                                                        recipient=recipients[0] if len(recipients) == 1 else None,
                                                        tls=None))
            reception.write(data)
            # The checks read what will be stored, as over SMTP: the byte ranges a check asks to remove
            # (forged verdict fields) are offsets into it. Their findings go with the message.
            message = MessageFacts(len(data), received=trace.received, own_received=trace.own,
                                   verdict_fields=trace.verdicts, read=reception.reader(reception.size))
            verdict = await self.policy.data(client, env, message, env.findings)
            if not verdict.accepted:
                raise Refused(verdict)
            env.dkim = await self.policy.signing_key(client, env)
        except BaseException:
            reception.abort()
            raise
        return await self.ingest.commit(reception, env)
