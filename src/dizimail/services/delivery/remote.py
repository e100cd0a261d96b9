"""Remote delivery: concurrency slots, connection reuse, destination back-off, replies → outcomes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from dizimail.interfaces.outbound import (
    ConnectFailed,
    Envelope,
    Hop,
    Outbound,
    OutboundSession,
    SessionLost,
    TransactionResult,
)
from dizimail.services.delivery.nexthop import Destination

log = logging.getLogger("dizimail.delivery")


class Slots:
    """Parallel deliveries in all and per destination; both limits may change at run time."""

    def __init__(self, total: int, per_destination: int) -> None:
        self.total = total
        self.per_destination = per_destination
        self.in_use = 0
        self.by_key: dict[str, int] = {}
        self._cond = asyncio.Condition()

    def _free(self, key: str) -> bool:
        return self.in_use < self.total and self.by_key.get(key, 0) < self.per_destination

    @contextlib.asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: self._free(key))
            self.in_use += 1
            self.by_key[key] = self.by_key.get(key, 0) + 1
        try:
            yield
        finally:
            async with self._cond:
                self.in_use -= 1
                left = self.by_key[key] - 1
                if left:
                    self.by_key[key] = left
                else:
                    del self.by_key[key]
                self._cond.notify_all()

    async def resize(self, total: int, per_destination: int) -> None:
        if (total, per_destination) != (self.total, self.per_destination):
            async with self._cond:
                self.total, self.per_destination = max(1, total), max(1, per_destination)
                self._cond.notify_all()


@dataclass
class Attempt:
    """The result of one delivery attempt for a group of recipients to one destination."""

    result: TransactionResult | None = None
    error: str = ""  # when result is None: why (temporary unless it starts with "5")
    host: str = ""
    tls: str | None = None
    maybe_sent: bool = False  # the connection broke after the end of data: the remote may have it
    dsn: bool = False  # the next hop takes over delivery notifications (RFC 3461 §4.1)


@dataclass
class _Idle:
    session: OutboundSession
    since: float


@dataclass
class RemoteDelivery:
    outbound: Outbound
    helo: str
    idle_timeout: float
    backoff: float
    slots: Slots
    idle: dict[tuple[str, int], list[_Idle]] = field(default_factory=dict)
    dead: dict[str, float] = field(default_factory=dict)
    reused: int = 0
    opened: int = 0
    _closing: set[asyncio.Task[None]] = field(default_factory=set)

    async def deliver(self, dest: Destination, envelope: Envelope,
                      body: Callable[[], AsyncIterator[bytes]]) -> Attempt:
        if dest.error:
            return Attempt(error=dest.error)
        until = self.dead.get(dest.key, 0.0)
        if until > time.monotonic():
            return Attempt(error=f"4.4.1 Delivery to {dest.key} temporarily suspended after a failed connection")
        async with self.slots.slot(dest.key):
            return await self._deliver(dest, envelope, body)

    async def _deliver(self, dest: Destination, envelope: Envelope,
                       body: Callable[[], AsyncIterator[bytes]]) -> Attempt:
        errors: list[str] = []
        for hop in dest.hops:
            session = self._take(hop)
            fresh = session is None
            while True:
                if session is None:
                    try:
                        session = await self.outbound.connect(hop, self.helo)
                    except ConnectFailed as exc:
                        errors.append(str(exc))
                        if exc.reply is not None and exc.reply.permanent and len(dest.hops) == 1:
                            return Attempt(error=f"{exc.reply.enhanced} {exc.reply}", host=hop.host)
                        break  # the next hop
                    fresh = True
                    self.opened += 1
                else:
                    self.reused += 1
                try:
                    result = await session.send(envelope, body())
                except SessionLost as exc:
                    await session.close()
                    if session.dot_sent:
                        return Attempt(error=f"4.4.2 Connection lost after the message was sent: {exc}",
                                       host=hop.host, maybe_sent=True)
                    errors.append(f"{hop.host}:{hop.port}: connection lost: {exc}")
                    if fresh:
                        break
                    session = None  # a cached connection the server had closed: once more, fresh
                    continue
                if result.data is None or not result.data.positive:
                    await session.reset()
                self._put(hop, session)
                self.dead.pop(dest.key, None)
                return Attempt(result=result, host=hop.host, tls=session.tls, dsn=session.supports("DSN"))
        self.dead[dest.key] = time.monotonic() + self.backoff
        log.info("delivery.connect.failed destination=%s errors=%s", dest.key, "; ".join(errors))
        return Attempt(error="4.4.1 " + ("; ".join(errors[-3:]) or "no host to connect to"))

    def _take(self, hop: Hop) -> OutboundSession | None:
        pool = self.idle.get((hop.host, hop.port))
        while pool:
            idle = pool.pop()
            if idle.session.usable and time.monotonic() - idle.since < self.idle_timeout:
                return idle.session
            self._closing.add(asyncio.get_running_loop().create_task(idle.session.close()))
            self._closing = {t for t in self._closing if not t.done()}
        return None

    def _put(self, hop: Hop, session: OutboundSession) -> None:
        if session.usable:
            self.idle.setdefault((hop.host, hop.port), []).append(_Idle(session, time.monotonic()))
        else:  # e.g. its RSET was refused: closed now, never left open behind us
            self._closing.add(asyncio.get_running_loop().create_task(session.close()))
            self._closing = {t for t in self._closing if not t.done()}

    async def reap(self, force: bool = False) -> None:
        """Close connections unused for longer than ``idle_timeout`` (all of them with ``force``)."""
        now = time.monotonic()
        for key, pool in list(self.idle.items()):
            keep = [i for i in pool if not force and i.session.usable and now - i.since < self.idle_timeout]
            for i in pool:
                if i not in keep:
                    await i.session.close()
            if keep:
                self.idle[key] = keep
            else:
                del self.idle[key]
        if force:
            await asyncio.sleep(0.01)  # let the transports we closed finish closing before the loop stops
