"""TCP listeners with connection limits; each session runs isolated from the others."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from dizimail.net.connection import Connection
from dizimail.services.accounts import FailureTracker
from dizimail.services.limits import ConnectionLimiter

log = logging.getLogger("dizimail.net")

Handler = Callable[[Connection], Awaitable[None]]
Refuse = Callable[[Connection, str], Awaitable[None]]


class ListenError(Exception):
    pass


ACCEPT_BATCH = 256  # connections taken from the kernel's queue per readiness event
ACCEPT_PAUSE = 0.1  # seconds without accepting after EMFILE/ENFILE/ENOMEM (the queue waits in the kernel)


class Listener:
    """Accepts on one address; refuses (with the protocol's own words) over-limit and locked-out IPs.

    The listening sockets are ours, not ``loop.create_server``'s: uvloop takes one connection
    from the accept queue per loop iteration, which capped a busy node at one new session per
    iteration (about 250/s under IMAP load, with connections waiting 75 ms for their greeting).
    Here every readiness event drains the queue (up to ACCEPT_BATCH), and each accepted socket
    becomes a transport with ``loop.connect_accepted_socket`` (TLS handshake included).
    """

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
        self.sockets: list[socket.socket] = []
        self.active = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            self.sockets = bind_sockets(self.host, self.port)
        except OSError as exc:
            raise ListenError(f"{self.name}: cannot listen on {self.host}:{self.port}: {exc.strerror}") from exc
        self.port = self.sockets[0].getsockname()[1]
        for sock in self.sockets:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                client, _addr = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("%s.accept.paused error=%s", self.name, exc.strerror)
                    assert self._loop is not None
                    self._loop.remove_reader(sock.fileno())
                    self._loop.call_later(ACCEPT_PAUSE, self._resume, sock)
                    return
                log.warning("%s.accept.failed error=%s", self.name, exc.strerror)
                return
            client.setblocking(False)
            self._track(self._adopt(client))

    def _resume(self, sock: socket.socket) -> None:
        if sock.fileno() >= 0 and self._loop is not None:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _track(self, coro: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _adopt(self, client: socket.socket) -> None:
        """Make a transport of an accepted socket (after the TLS handshake, for implicit TLS)."""
        assert self._loop is not None
        try:
            await self._loop.connect_accepted_socket(lambda: _Accepted(self), client, ssl=self.tls,
                                                     ssl_handshake_timeout=30 if self.tls else None)
        except (OSError, ssl.SSLError, TimeoutError) as exc:  # a failed handshake ends only this client
            log.info("%s.handshake.failed error=%s", self.name, exc)
            client.close()

    async def _serve(self, conn: Connection) -> None:
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

    async def stop(self) -> None:
        for sock in self.sockets:
            if self._loop is not None and sock.fileno() >= 0:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self.sockets = []
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def bind_sockets(host: str, port: int, backlog: int = 1024) -> list[socket.socket]:
    """Listening, non-blocking sockets for every address ``host`` names (``""``: all of them);
    port 0 picks one free port shared by all."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    seen: set[tuple[int, object]] = set()
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _canon, addr in infos:
            if (family, addr[0]) in seen:
                continue
            seen.add((family, addr[0]))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if sockets[0] is not sock and port == 0:  # the same port on every address
                addr = (addr[0], sockets[0].getsockname()[1], *addr[2:])
            sock.bind(addr)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class _Accepted(Connection):
    """A connection that starts its session as soon as the transport exists."""

    def __init__(self, listener: Listener) -> None:
        super().__init__()
        self._listener = listener

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._listener._track(self._listener._serve(self))
