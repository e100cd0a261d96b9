"""IMAP listeners and what every session of this node shares."""

from __future__ import annotations

import itertools
import logging
import ssl
from dataclasses import dataclass, field

from dizimail.config.schema import Config
from dizimail.imap.session import ImapSession
from dizimail.net.connection import Connection
from dizimail.net.listener import Listener
from dizimail.services.accounts import AccountService
from dizimail.services.folders import Folders
from dizimail.services.ingest import Ingest
from dizimail.services.limits import ConnectionLimiter, MemoryBudget
from dizimail.services.mailstore import Mailstore
from dizimail.services.notify import Notifier

log = logging.getLogger("dizimail.imap")
_ids = itertools.count(1)


@dataclass
class ImapContext:
    config: Config
    accounts: AccountService
    folders: Folders
    mailstore: Mailstore
    ingest: Ingest
    notifier: Notifier
    tls: ssl.SSLContext | None
    literals: MemoryBudget = field(init=False)  # literal bytes held by all sessions (limits.max_literal_memory)

    def __post_init__(self) -> None:
        self.literals = MemoryBudget(self.config.limits.max_literal_memory)


def imap_listener(ctx: ImapContext, implicit_tls: bool, host: str, port: int, *,
                  limiter: ConnectionLimiter) -> Listener:
    async def handle(conn: Connection) -> None:
        sid = f"i{next(_ids)}"
        log.info("imap.connect session=%s ip=%s tls=%s", sid, conn.peer_ip, implicit_tls)
        await ImapSession(ctx, conn, sid).run()

    async def refuse(conn: Connection, reason: str) -> None:
        conn.write(b"* BYE [UNAVAILABLE] " + reason.replace("_", " ").encode() + b"\r\n")
        try:
            await conn.drain()
        except OSError:
            pass

    admit, release = limiter.gate(ctx.accounts.auth_refused)
    return Listener("imaps" if implicit_tls else "imap", host, port, handle, refuse, admit=admit,
                    release=release, max_connections=ctx.config.limits.max_connections,
                    handshake_timeout=ctx.config.limits.tls_handshake_timeout,
                    tls=ctx.tls if implicit_tls else None)
