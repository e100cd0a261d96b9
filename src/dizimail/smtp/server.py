"""SMTP listeners: what each mode (mx, submission, smtps) shares, and how a session starts."""

from __future__ import annotations

import itertools
import logging
import ssl
from dataclasses import dataclass

from dizimail.config.schema import Config
from dizimail.i18n import translate
from dizimail.net.connection import Connection
from dizimail.net.listener import Listener
from dizimail.services.accounts import AccountService, FailureTracker
from dizimail.services.dkim import DkimService
from dizimail.services.ingest import Ingest
from dizimail.services.limits import ConnectionLimiter
from dizimail.services.relay import RelayPolicy
from dizimail.services.routing import Router
from dizimail.smtp.session import SmtpSession

log = logging.getLogger("dizimail.smtp")
_ids = itertools.count(1)


class _ReceptionOpen(FailureTracker):
    """What port 25's listener consults at connect: an IP locked out of authentication still delivers mail
    (AUTH there still meets the lockout in AccountService.authenticate). Stands in until the listener takes
    an admission callable (AccountService.auth_refused) for the listeners that authenticate only."""

    def is_locked(self, ip: str) -> bool:
        return False


@dataclass
class SmtpContext:
    """What every SMTP session of this node needs, built once by the app."""

    config: Config
    accounts: AccountService
    router: Router
    ingest: Ingest
    tls: ssl.SSLContext | None
    relay: RelayPolicy
    dkim: DkimService

    @property
    def hostname(self) -> str:
        return self.config.server.hostname

    def text(self, key: str) -> str:
        return translate(key, "en")

    async def postmaster(self) -> str:
        """RFC 5321 §4.5.1: <Postmaster> without a domain goes to the first local domain's postmaster."""
        domains = [d for d in await self.accounts.list_domains() if d.alias_of is None]
        return f"postmaster@{domains[0].name}" if domains else "postmaster@invalid"


def smtp_listener(ctx: SmtpContext, mode: str, host: str, port: int, *, limiter: ConnectionLimiter) -> Listener:
    async def handle(conn: Connection) -> None:
        sid = f"s{next(_ids)}"
        # One INFO line per session (logging is a measurable share of a relay's CPU); connect at DEBUG.
        log.debug("smtp.connect session=%s mode=%s ip=%s", sid, mode, conn.peer_ip)
        session = SmtpSession(ctx, conn, mode, sid)
        await session.run()
        log.info("smtp.disconnect session=%s mode=%s ip=%s messages=%d", sid, mode, conn.peer_ip, session.accepted)

    async def refuse(conn: Connection, reason: str) -> None:
        conn.write(f"421 4.7.0 {ctx.hostname} {translate(reason, 'en')}\r\n".encode())
        try:
            await conn.drain()
        except OSError:
            pass

    failures = _ReceptionOpen(ctx.config.auth) if mode == "mx" else ctx.accounts.failures
    return Listener(f"smtp-{mode}", host, port, handle, refuse, limiter=limiter, failures=failures,
                    max_connections=ctx.config.limits.max_connections,
                    tls=ctx.tls if mode == "smtps" else None)
