"""TCP listeners with connection limits; each session runs isolated from the others."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable

from dizimail.net.connection import Connection
from dizimail.services.accounts import FailureTracker
from dizimail.services.limits import ConnectionLimiter

log = logging.getLogger("dizimail.net")

Handler = Callable[[Connection], Awaitable[None]]
Refuse = Callable[[Connection, str], Awaitable[None]]


class ListenError(Exception):
    pass


class Listener:
    """Accepts on one address; refuses (with the protocol's own words) over-limit and locked-out IPs."""

    def __init__(self, name: str, host: str, port: int, handler: Handler, refuse: Refuse, *,
                 limiter: ConnectionLimiter, failures: FailureTracker, max_connections: int,
                 tls: ssl.SSLContext | None = None) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.handler = handler
        self.refuse = refuse
        self.limiter = limiter
        self.failures = failures
        self.max_connections = max_connections
        self.tls = tls
        self.server: asyncio.Server | None = None
        self.active = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self.server = await loop.create_server(self._protocol, self.host, self.port, ssl=self.tls,
                                                   backlog=1024, ssl_handshake_timeout=30 if self.tls else None)
        except OSError as exc:
            raise ListenError(f"{self.name}: cannot listen on {self.host}:{self.port}: {exc.strerror}") from exc
        self.port = self.server.sockets[0].getsockname()[1]

    def _protocol(self) -> Connection:
        conn = _Accepted(self)
        return conn

    async def _serve(self, conn: Connection) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        ip = conn.peer_ip
        counted = False
        try:
            if self.failures.is_locked(ip):
                log.info("%s.refused ip=%s reason=locked-out", self.name, ip)
                await self.refuse(conn, "locked_out")
                return
            if self.active >= self.max_connections or not self.limiter.acquire(ip):
                log.info("%s.refused ip=%s reason=too-many-connections", self.name, ip)
                await self.refuse(conn, "too_many_connections")
                return
            counted = True
            self.active += 1
            await self.handler(conn)
        except Exception:  # one broken session must never take the listener down
            log.exception("%s.session.crashed ip=%s", self.name, ip)
        finally:
            if counted:
                self.active -= 1
                self.limiter.release(ip)
            await conn.close()
            self._tasks.discard(task)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.server.wait_closed()


class _Accepted(Connection):
    """A connection that starts its session as soon as the transport exists."""

    def __init__(self, listener: Listener) -> None:
        super().__init__()
        self._listener = listener

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        asyncio.get_running_loop().create_task(self._listener._serve(self))
