"""A buffered, limited, TLS-upgradable connection on a plain asyncio Protocol.

Our own protocol rather than StreamReader: the receive buffer is ours, so
STARTTLS can discard whatever plaintext was pipelined behind the command
(RFC 3207 §4.2, CVE-2011-0411 class), reading pauses while the buffer is
large (back-pressure), and there is one copy less per chunk.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections.abc import Callable
from typing import Any

HIGH_WATER = 1 << 20
FLUSH_AT = 64 * 1024
MAX_INFLATE = 16 << 20  # most bytes one received chunk may inflate to


class LineTooLong(Exception):
    """The line exceeded the limit; it has been consumed up to and including its LF."""


class ConnectionClosed(Exception):
    pass


class Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self._out = bytearray()
        self._deflater: Any = None
        self._inflater: Any = None
        self.transport: asyncio.Transport | None = None
        self.peer_ip = "?"
        self.peer_port = 0
        self.tls: ssl.SSLObject | None = None
        self._closed = False
        self._data_waiter: asyncio.Future[None] | None = None
        self._deadline = 0.0  # when the read in progress times out (loop time)
        self._timer: asyncio.TimerHandle | None = None  # armed for _timer_at <= _deadline
        self._timer_at = 0.0
        self._drain_waiter: asyncio.Future[None] | None = None
        self._paused_reading = False
        self._paused_writing = False
        self.broken: str | None = None  # why the connection was abandoned (a broken compressed stream)

    # --- asyncio.Protocol callbacks ----------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are not asyncio.Transport
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer_ip, self.peer_port = str(peer[0]), int(peer[1]) if len(peer) > 1 else 0
        self.tls = transport.get_extra_info("ssl_object")

    def data_received(self, data: bytes) -> None:
        if self._inflater is not None:
            try:
                data = self._inflater.decompress(data, MAX_INFLATE)
            except zlib.error as exc:  # not DEFLATE data: this client's stream is over, nobody else's
                self._abandon(f"not DEFLATE data ({exc})")
                return
            if self._inflater.unconsumed_tail:  # a decompression bomb: refuse rather than balloon
                self._abandon("inflates past the limit")
                return
        self.buf += data
        if len(self.buf) > HIGH_WATER and self.transport is not None and not self._paused_reading:
            self._paused_reading = True
            self.transport.pause_reading()
        self._wake_reader()

    def _abandon(self, reason: str) -> None:
        """Close because the compressed stream is unusable; ``broken`` says why (the session logs it)."""
        self.broken = reason
        self._closed = True
        if self.transport is not None:
            self.transport.close()
        self._wake_reader()

    def eof_received(self) -> bool:
        self._closed = True
        self._wake_reader()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake_reader()
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_exception(ConnectionClosed())

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    def _wake_reader(self) -> None:
        if self._data_waiter is not None and not self._data_waiter.done():
            self._data_waiter.set_result(None)

    # --- reading -------------------------------------------------------------
    async def _fill(self, timeout: float) -> None:
        self.flush()  # never wait for the client while our answer sits in the buffer
        if self._closed:
            raise ConnectionClosed()
        if self._paused_reading and self.transport is not None:
            self._paused_reading = False
            self.transport.resume_reading()
        before = len(self.buf)
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + timeout
        if self._timer is None or self._timer_at > self._deadline:
            self._arm(loop)
        self._data_waiter = loop.create_future()
        try:
            await self._data_waiter
        finally:
            self._data_waiter = None
        if len(self.buf) == before and self._closed:
            raise ConnectionClosed()

    # One timer per connection, not one per read (asyncio.wait_for made a future, a timer and
    # callbacks for every command): each read only moves the deadline, and the timer, when it
    # fires early, re-arms itself for the deadline as it stands then.
    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = self._deadline
        self._timer = loop.call_at(self._deadline, self._on_timer, loop)

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        waiter = self._data_waiter
        if waiter is None or waiter.done():
            return  # not reading now: the next read arms the timer again
        if loop.time() + 0.005 >= self._deadline:  # timers may fire a little early: no re-arming spin
            waiter.set_exception(TimeoutError())
        else:
            self._arm(loop)

    async def read_line(self, limit: int, timeout: float) -> bytes:
        """One line without its CRLF (or bare LF). Raises LineTooLong, ConnectionClosed, TimeoutError."""
        start = 0
        while True:
            pos = self.buf.find(b"\n", start)
            if pos >= 0:
                if pos > limit:
                    del self.buf[: pos + 1]
                    raise LineTooLong()
                end = pos - 1 if pos and self.buf[pos - 1] == 13 else pos
                line = bytes(self.buf[:end])
                del self.buf[: pos + 1]
                return line
            if len(self.buf) > limit:
                await self._discard_line(timeout)
                raise LineTooLong()
            start = len(self.buf)
            await self._fill(timeout)

    async def _discard_line(self, timeout: float) -> None:
        while True:
            pos = self.buf.find(b"\n")
            if pos >= 0:
                del self.buf[: pos + 1]
                return
            self.buf.clear()
            await self._fill(timeout)

    async def read_some(self, timeout: float) -> bytes:
        """Whatever is buffered, or the next chunk from the network."""
        while not self.buf:
            await self._fill(timeout)
        data = bytes(self.buf)
        self.buf.clear()
        return data

    async def read_exactly(self, n: int, timeout: float) -> bytes:
        while len(self.buf) < n:
            await self._fill(timeout)
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    async def wait_for_input(self, timeout: float) -> int:
        """How many bytes the client sent, waiting at most ``timeout`` seconds for some; nothing is
        consumed (the SMTP pregreet test)."""
        if not self.buf:
            try:
                await self._fill(timeout)
            except TimeoutError:
                pass
        return len(self.buf)

    def unread(self, data: bytes) -> None:
        self.buf[:0] = data

    def has_pending(self) -> bool:
        return bool(self.buf)

    # --- writing -------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Queue bytes; they go out in one send when the session drains or waits for input
        (one syscall per response group instead of one per line)."""
        self._out += data
        if len(self._out) >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if self._out and self.transport is not None and not self._closed:
            data = bytes(self._out)
            if self._deflater is not None:
                data = self._deflater.compress(data) + self._deflater.flush(zlib.Z_SYNC_FLUSH)
            self.transport.write(data)
        self._out.clear()

    @property
    def compressed(self) -> bool:
        return self._deflater is not None

    def start_compression(self) -> None:
        """RFC 4978: raw DEFLATE (no zlib header) from now on; call after the OK has been flushed."""
        self._deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
        self._inflater = zlib.decompressobj(-15)
        if self.buf:  # bytes already received after COMPRESS are compressed too
            pending, self.buf = bytes(self.buf), bytearray()
            self.data_received(pending)

    async def drain(self) -> None:
        self.flush()
        if self._closed:
            raise ConnectionClosed()
        if self._paused_writing:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None

    # --- TLS and close --------------------------------------------------------
    def pause_for_tls(self) -> None:
        """Call before sending the go-ahead: nothing more is read until the handshake, and any
        pipelined plaintext already received is thrown away (never treated as post-TLS input)."""
        assert self.transport is not None
        self.flush()
        self.transport.pause_reading()
        self.buf.clear()

    async def upgrade(self, go_ahead: bytes, context: ssl.SSLContext, failed: Callable[[Exception], None],
                      timeout: float = 30.0) -> None:
        """A server's STARTTLS (SMTP, IMAP, POP3, ManageSieve alike): nothing more read in plaintext, the
        go-ahead sent, the handshake made; when it fails, ``failed`` hears why and ConnectionClosed ends
        the session."""
        self.pause_for_tls()
        self.write(go_ahead)
        await self.drain()
        try:
            await self.start_tls(context, timeout)
        except Exception as exc:
            failed(exc)
            raise ConnectionClosed() from exc

    async def start_tls(self, context: ssl.SSLContext, timeout: float, *, server_side: bool = True,
                        server_hostname: str | None = None) -> None:
        assert self.transport is not None
        self.buf.clear()
        loop = asyncio.get_running_loop()
        transport = await asyncio.wait_for(
            loop.start_tls(self.transport, self, context, server_side=server_side,
                           server_hostname=server_hostname), timeout)
        if transport is None:
            raise ConnectionClosed()
        self.transport = transport
        self.tls = transport.get_extra_info("ssl_object")
        self._paused_reading = False

    def tls_description(self) -> str | None:
        if self.tls is None:
            return None
        cipher = self.tls.cipher()
        return f"using {self.tls.version()} with cipher {cipher[0] if cipher else '?'}"

    async def drain_quietly(self, timeout: float = 5.0) -> None:
        """Send what is queued if the peer still listens: the last words of a session (a client may
        close right after QUIT or LOGOUT without reading the reply)."""
        try:
            await asyncio.wait_for(self.drain(), timeout)
        except (TimeoutError, ConnectionClosed, OSError):
            pass

    async def close(self) -> None:
        self.flush()
        if self.transport is not None:
            self.transport.close()
        self._closed = True

    def extra(self, name: str) -> Any:
        return self.transport.get_extra_info(name) if self.transport is not None else None
