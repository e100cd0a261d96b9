"""SMTP listeners: what each mode (mx, submission, smtps) shares, and how a session starts."""

from __future__ import annotations

import itertools
import logging
import ssl
from dataclasses import dataclass, field

from dizimail.config.schema import Config
from dizimail.net.connection import Connection
from dizimail.net.listener import Listener
from dizimail.services.accounts import AccountService
from dizimail.services.ingest import Ingest
from dizimail.services.limits import ConnectionLimiter, MemoryBudget
from dizimail.services.policy.engine import Policy
from dizimail.services.policy.facts import Mode
from dizimail.smtp import replies
from dizimail.smtp.session import SmtpSession

log = logging.getLogger("dizimail.smtp")
_ids = itertools.count(1)


@dataclass
class SmtpContext:
    """What every SMTP session of this node needs, built once by the app."""

    config: Config
    accounts: AccountService
    policy: Policy
    ingest: Ingest
    tls: ssl.SSLContext | None
    # Port 25 offers AUTH unless SMTP workers serve it (server.smtp_workers): a worker's lockout counters
    # would be its own, so logins go to the submission ports, which the node serves.
    mx_auth: bool = True
    session_prefix: str = "s"  # an SMTP worker's sessions are w<slot>s<n>: one name space per process
    # Message bytes the checks at the end of DATA hold (limits.max_check_memory): each message is read
    # into memory once for them, so many large messages finishing at once cannot grow the node past it.
    checking: MemoryBudget = field(init=False)

    def __post_init__(self) -> None:
        self.checking = MemoryBudget(self.config.limits.max_check_memory)

    @property
    def hostname(self) -> str:
        return self.config.server.hostname

    async def postmaster(self) -> str:
        return await self.accounts.postmaster(self.hostname)


def smtp_listener(ctx: SmtpContext, mode: Mode, host: str, port: int, *, limiter: ConnectionLimiter) -> Listener:
    async def handle(conn: Connection) -> None:
        sid = f"{ctx.session_prefix}{next(_ids)}"
        # One INFO line per session (logging is a measurable share of a relay's CPU); connect at DEBUG.
        log.debug("smtp.connect session=%s mode=%s ip=%s", sid, mode, conn.peer_ip)
        session = SmtpSession(ctx, conn, mode, sid)
        await session.run()
        log.info("smtp.disconnect session=%s mode=%s ip=%s messages=%d", sid, mode, conn.peer_ip, session.accepted)

    async def refuse(conn: Connection, reason: str) -> None:
        reply = replies.refused_connection(ctx.hostname, reason)
        conn.write(f"{reply.code} {reply.enhanced} {reply.text}\r\n".encode())
        try:
            await conn.drain()
        except OSError:
            pass

    # A client locked out of authentication still delivers mail to the MX port; the submission ports
    # exist to log in, so they refuse it as IMAP and POP3 do.
    admit, release = limiter.gate(None if mode is Mode.MX else ctx.accounts.auth_refused)
    return Listener(f"smtp-{mode}", host, port, handle, refuse, admit=admit, release=release,
                    max_connections=ctx.config.limits.max_connections,
                    handshake_timeout=ctx.config.limits.tls_handshake_timeout,
                    tls=ctx.tls if mode is Mode.SMTPS else None)
