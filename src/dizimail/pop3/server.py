"""POP3 listeners (110 with STLS, 995 implicit TLS)."""

from __future__ import annotations

import itertools
import logging
import ssl
from dataclasses import dataclass

from dizimail.config.schema import Config
from dizimail.i18n import translate
from dizimail.net.connection import Connection
from dizimail.net.listener import Listener
from dizimail.pop3.session import Pop3Session
from dizimail.services.accounts import AccountService
from dizimail.services.limits import ConnectionLimiter
from dizimail.services.mailstore import Mailstore

log = logging.getLogger("dizimail.pop3")
_ids = itertools.count(1)


@dataclass
class Pop3Context:
    config: Config
    accounts: AccountService
    mailstore: Mailstore
    tls: ssl.SSLContext | None

    def text(self, key: str) -> str:
        return translate(key, "en")


def pop3_listener(ctx: Pop3Context, implicit_tls: bool, host: str, port: int, *,
                  limiter: ConnectionLimiter) -> Listener:
    async def handle(conn: Connection) -> None:
        sid = f"p{next(_ids)}"
        log.info("pop3.connect session=%s ip=%s tls=%s", sid, conn.peer_ip, implicit_tls)
        await Pop3Session(ctx, conn, sid).run()

    async def refuse(conn: Connection, reason: str) -> None:
        conn.write(f"-ERR [{'AUTH' if reason == 'locked_out' else 'SYS/TEMP'}] {translate(reason)}\r\n".encode())
        try:
            await conn.drain()
        except OSError:
            pass

    admit, release = limiter.gate(ctx.accounts.auth_refused)
    return Listener("pop3s" if implicit_tls else "pop3", host, port, handle, refuse, admit=admit,
                    release=release, max_connections=ctx.config.limits.max_connections,
                    handshake_timeout=ctx.config.limits.tls_handshake_timeout,
                    tls=ctx.tls if implicit_tls else None)
