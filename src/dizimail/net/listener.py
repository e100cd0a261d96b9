"""TCP listeners with connection limits; each session runs isolated from the others.

A connection is admitted (and counted) the moment it is accepted, before any TLS handshake: a client
that opens hundreds of implicit-TLS connections and never sends a ClientHello holds only its share of
connections, each for ``handshake_timeout``. Who is admitted is not decided here: the front-end hands
the listener ``admit``/``release`` callables (``services.limits``), so ``net`` imports no service.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from dizimail.net.connection import Connection

log = logging.getLogger("dizimail.net")

Handler = Callable[[Connection], Awaitable[None]]
Refuse = Callable[[Connection, str], Awaitable[None]]
Admit = Callable[[str], str | None]  # peer IP -> None (admitted and counted) or the refusal's i18n key
Release = Callable[[str], None]
HandOff = Callable[[socket.socket, str], bool]  # (admitted socket, peer IP) -> True if another process took it
Hosted = Callable[[], asyncio.Protocol]  # a protocol that serves a connection by itself (the HTTPS side's)


class ListenError(Exception):
    pass


ACCEPT_BATCH = 256  # connections taken from the kernel's queue per readiness event
ACCEPT_PAUSE = 0.1  # seconds without accepting after EMFILE/ENFILE/ENOMEM (the queue waits in the kernel)
HANDSHAKE_TIMEOUT = 10.0  # seconds an implicit-TLS client has to finish its handshake
STOP_GRACE = 10.0  # seconds cancelled sessions have to end when the listener stops


class Listener:
    """Accepts on one address; refuses (with the protocol's own words, or for implicit TLS by closing
    before the handshake) connections ``admit`` turns away and those past ``max_connections``.

    The listening sockets are ours, not ``loop.create_server``'s: uvloop takes one connection
    from the accept queue per loop iteration, which capped a busy node at one new session per
    iteration (about 250/s under IMAP load, with connections waiting 75 ms for their greeting).
    Here every readiness event drains the queue (up to ACCEPT_BATCH), and each accepted socket
    becomes a transport with ``loop.connect_accepted_socket`` (TLS handshake included).
    """

    def __init__(self, name: str, host: str, port: int, handler: Handler, refuse: Refuse, *,
                 admit: Admit, release: Release, max_connections: int, tls: ssl.SSLContext | None = None,
                 handshake_timeout: float = HANDSHAKE_TIMEOUT, hosted: Hosted | None = None) -> None:
        """``hosted``: admitted connections are served by a protocol of its making (an HTTP server's)
        instead of ``handler`` over a :class:`Connection`; the listener still admits, counts, times the
        handshake and closes them at stop."""
        self.name = name
        self.host = host
        self.port = port
        self.handler = handler
        self.refuse = refuse
        self.admit = admit
        self.release = release
        self.max_connections = max_connections
        self.tls = tls
        self.handshake_timeout = handshake_timeout
        self.sockets: list[socket.socket] = []
        self.active = 0  # admitted connections, handshakes in progress included, handed-off ones too
        # Admitted connections may be handed to a worker process (app.workers), which serves them and
        # reports their end (:meth:`handed_back`); False from it: served here, as without workers.
        self.hand_off: HandOff | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.hosted = hosted
        self._hosted: set[_Hosting] = set()
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
                client, addr = sock.accept()
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
            ip = str(addr[0])
            reason = "too_many_connections" if self.active >= self.max_connections else self.admit(ip)
            if reason is None:
                self.active += 1
                if self.hand_off is not None and self.hand_off(client, ip):
                    client.close()  # the worker holds its own descriptor now
                    continue
            elif self.tls is not None:  # nothing can be said before a handshake: spend nothing on one
                log.info("%s.refused ip=%s reason=%s", self.name, ip, reason)
                client.close()
                continue
            self._track(self._adopt(client, ip, reason))

    def handed_back(self, ip: str) -> None:
        """A connection handed off by :attr:`hand_off` ended (or its worker died)."""
        self._done(ip)

    def adopt(self, client: socket.socket, ip: str) -> None:
        """Serve a connection another process accepted and admitted (an SMTP worker's side)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        client.setblocking(False)
        self.active += 1
        self._track(self._adopt(client, ip, None))

    def _resume(self, sock: socket.socket) -> None:
        if sock.fileno() >= 0 and self._loop is not None:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _track(self, coro: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _done(self, ip: str) -> None:
        self.active -= 1
        self.release(ip)

    async def _adopt(self, client: socket.socket, ip: str, reason: str | None) -> None:
        """Make a transport of an accepted socket (after the TLS handshake, for implicit TLS)."""
        assert self._loop is not None
        hosted = self.hosted
        factory: Callable[[], asyncio.Protocol] = (
            (lambda: _Accepted(self, ip, reason)) if hosted is None or reason is not None
            else (lambda: _Hosting(self, ip, hosted())))
        try:
            await self._loop.connect_accepted_socket(
                factory, client, ssl=self.tls,
                ssl_handshake_timeout=self.handshake_timeout if self.tls else None)
        except (OSError, ssl.SSLError, TimeoutError) as exc:  # a failed handshake ends only this client
            log.info("%s.handshake.failed ip=%s error=%s", self.name, ip, exc or type(exc).__name__)
            client.close()
            if reason is None:
                self._done(ip)

    async def _serve(self, conn: Connection, ip: str, reason: str | None) -> None:
        try:
            if reason is not None:
                log.info("%s.refused ip=%s reason=%s", self.name, ip, reason)
                await self.refuse(conn, reason)
                return
            await self.handler(conn)
        except Exception:  # one broken session must never take the listener down
            log.exception("%s.session.crashed ip=%s", self.name, ip)
        finally:
            if reason is None:
                self._done(ip)
            await conn.close()

    async def stop(self) -> None:
        for sock in self.sockets:
            if self._loop is not None and sock.fileno() >= 0:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self.sockets = []
        for hosting in list(self._hosted):
            hosting.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:  # bounded: a session whose cancellation a library swallowed must not hold the stop
            _done, stuck = await asyncio.wait(list(self._tasks), timeout=STOP_GRACE)
            if stuck:
                log.error("%s.stop.stuck sessions=%d: not ended %.0f s after cancel", self.name, len(stuck),
                          STOP_GRACE)


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

    def __init__(self, listener: Listener, ip: str, reason: str | None) -> None:
        super().__init__()
        self._listener = listener
        self._ip = ip
        self._reason = reason

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._listener._track(self._listener._serve(self, self._ip, self._reason))


class _Hosting(asyncio.Protocol):
    """Passes a connection's events to a protocol that serves it by itself; tells the listener when the
    connection ends (its count and the client's share are released once)."""

    def __init__(self, listener: Listener, ip: str, inner: asyncio.Protocol) -> None:
        self._listener = listener
        self._ip = ip
        self.inner = inner
        self.transport: asyncio.BaseTransport | None = None
        self._quiet: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self._listener._hosted.add(self)
        # Until the client sends its first bytes nobody times it out (the protocol's own timers start
        # with a request): it gets as long as a handshake has.
        self._quiet = asyncio.get_running_loop().call_later(self._listener.handshake_timeout, self.abort)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._quiet is not None:
            self._quiet.cancel()
            self._quiet = None
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._quiet is not None:
            self._quiet.cancel()
            self._quiet = None
        try:
            self.inner.connection_lost(exc)
        finally:
            if self in self._listener._hosted:
                self._listener._hosted.discard(self)
                self._listener._done(self._ip)

    def abort(self) -> None:
        """Drop the connection now: a TLS close would wait for the client's close_notify, holding the
        client's share of connections as long as it cares to stay silent."""
        abort = getattr(self.transport, "abort", None)  # uvloop's transports are not asyncio.Transport
        if abort is not None:
            abort()
        elif self.transport is not None:
            self.transport.close()
