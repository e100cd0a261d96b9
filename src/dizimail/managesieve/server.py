"""The ManageSieve listener (RFC 5804 §1.8: port 4190, STARTTLS)."""

from __future__ import annotations

import itertools
import logging
import ssl
from dataclasses import dataclass

from dizimail.config.schema import Config
from dizimail.i18n import translate
from dizimail.managesieve.session import SieveSession
from dizimail.net.connection import Connection
from dizimail.net.listener import Listener
from dizimail.services.accounts import AccountService
from dizimail.services.limits import ConnectionLimiter
from dizimail.services.sieve.scripts import SieveScripts

log = logging.getLogger("dizimail.managesieve")
_ids = itertools.count(1)


@dataclass
class SieveContext:
    config: Config
    accounts: AccountService
    scripts: SieveScripts
    tls: ssl.SSLContext | None

    def text(self, key: str) -> str:
        return translate(key, "en")


def managesieve_listener(ctx: SieveContext, host: str, port: int, *, limiter: ConnectionLimiter) -> Listener:
    async def handle(conn: Connection) -> None:
        sid = f"s{next(_ids)}"
        log.info("managesieve.connect session=%s ip=%s", sid, conn.peer_ip)
        await SieveSession(ctx, conn, sid).run()

    async def refuse(conn: Connection, reason: str) -> None:
        code = "TRYLATER"
        conn.write(f'BYE ({code}) "{translate(reason)}"\r\n'.encode())
        try:
            await conn.drain()
        except OSError:
            pass

    admit, release = limiter.gate(ctx.accounts.auth_refused)
    return Listener("managesieve", host, port, handle, refuse, admit=admit, release=release,
                    max_connections=ctx.config.limits.max_connections,
                    handshake_timeout=ctx.config.limits.tls_handshake_timeout, tls=None)
