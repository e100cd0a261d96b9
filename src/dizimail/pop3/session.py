"""One POP3 session: AUTHORIZATION → TRANSACTION → UPDATE (RFC 1939 §3)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from dizimail.codec import pop3 as codec
from dizimail.codec import sasl
from dizimail.model.errors import MailError
from dizimail.model.types import MessageEntry
from dizimail.net.connection import Connection, ConnectionClosed, LineTooLong
from dizimail.services.mailstore import Maildrop, MaildropBusy

if TYPE_CHECKING:
    from dizimail.pop3.server import Pop3Context

log = logging.getLogger("dizimail.pop3")

LINE_LIMIT = 4096  # RFC 2449 allows 255 octets a command; AUTH initial responses need more


class CloseSession(Exception):
    pass


class Pop3Session:
    def __init__(self, ctx: Pop3Context, conn: Connection, session_id: str) -> None:
        self.ctx = ctx
        self.conn = conn
        self.sid = session_id
        self.user: str | None = None
        self.drop: Maildrop | None = None
        self.deleted: set[int] = set()
        self.bad = 0
        self.handlers: dict[type, Callable[[codec.Command], Awaitable[None]]] = {
            codec.Capa: self.cmd_capa, codec.Stls: self.cmd_stls, codec.User: self.cmd_user,
            codec.Pass: self.cmd_pass, codec.Auth: self.cmd_auth, codec.Quit: self.cmd_quit,
            codec.Stat: self.cmd_stat, codec.List: self.cmd_list, codec.Uidl: self.cmd_uidl,
            codec.Retr: self.cmd_retr, codec.Top: self.cmd_top, codec.Dele: self.cmd_dele,
            codec.Rset: self.cmd_rset, codec.Noop: self.cmd_noop,
        }
        self.transaction_only = {codec.Stat, codec.List, codec.Uidl, codec.Retr, codec.Top, codec.Dele,
                                 codec.Rset, codec.Noop}
        self.authorization_only = {codec.Stls, codec.User, codec.Pass, codec.Auth}

    def ok(self, text: str = "") -> None:
        self.conn.write(f"+OK {text}\r\n".encode() if text else b"+OK\r\n")

    def err(self, text: str) -> None:
        self.bad += 1
        self.conn.write(f"-ERR {text}\r\n".encode())

    async def run(self) -> None:
        limits = self.ctx.config.limits
        self.ok("dizimail POP3 ready")
        try:
            await self.conn.drain()
            while True:
                try:
                    line = await self.conn.read_line(LINE_LIMIT, limits.command_timeout)
                except LineTooLong:
                    self.err("Line too long")
                else:
                    await self.dispatch(line)
                if self.bad >= limits.max_bad_commands:
                    self.err("Too many errors, closing connection")
                    await self.conn.drain_quietly()
                    return
                if not self.conn.has_pending():
                    await self.conn.drain()
        except CloseSession:
            await self.conn.drain_quietly()
        except (TimeoutError, ConnectionClosed, ConnectionError):
            pass
        finally:
            if self.drop is not None:  # no QUIT: nothing is deleted (RFC 1939 §6)
                self.ctx.mailstore.release(self.drop)

    async def dispatch(self, line: bytes) -> None:
        try:
            command = codec.parse_command(line)
        except codec.Pop3SyntaxError as exc:
            self.err(exc.text)
            return
        kind = type(command)
        if self.drop is None and kind in self.transaction_only:
            self.err("Not logged in")
        elif self.drop is not None and kind in self.authorization_only:
            self.err("Already logged in")
        else:
            await self.handlers[kind](command)

    # --- AUTHORIZATION ------------------------------------------------------
    def secure(self) -> bool:
        return self.conn.tls is not None or self.ctx.accounts.plaintext_allowed(self.conn.peer_ip)

    async def cmd_capa(self, cmd: codec.Command) -> None:
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "IMPLEMENTATION dizimail"]
        if self.drop is None:
            if self.conn.tls is None and self.ctx.tls is not None:
                caps.append("STLS")
            if self.secure():
                caps += ["USER", "SASL " + " ".join(sasl.MECHANISMS)]
        self.conn.write(("+OK Capability list follows\r\n" + "".join(f"{c}\r\n" for c in caps) + ".\r\n").encode())

    async def cmd_stls(self, cmd: codec.Command) -> None:
        if self.ctx.tls is None or self.conn.tls is not None:
            self.err("TLS not available" if self.ctx.tls is None else "TLS already active")
            return
        await self.conn.upgrade(b"+OK Begin TLS negotiation\r\n", self.ctx.tls, lambda exc: log.info(
            "pop3.tls.failed session=%s ip=%s error=%r", self.sid, self.conn.peer_ip, exc))
        self.user = None

    async def cmd_user(self, cmd: codec.Command) -> None:
        assert isinstance(cmd, codec.User)
        if not self.secure():
            self.err("[AUTH] Plaintext authentication disallowed without TLS; use STLS")
            return
        self.user = cmd.name
        self.ok()

    async def cmd_pass(self, cmd: codec.Command) -> None:
        assert isinstance(cmd, codec.Pass)
        if self.user is None:
            self.err("USER first")
            return
        user, self.user = self.user, None
        await self.login(user, cmd.password)

    async def cmd_auth(self, cmd: codec.Command) -> None:
        assert isinstance(cmd, codec.Auth)
        if cmd.mechanism is None:  # RFC 5034 §4 pre-standard listing form
            self.conn.write(("+OK\r\n" + "".join(f"{m}\r\n" for m in sasl.MECHANISMS) + ".\r\n").encode())
            return
        if not self.secure():
            self.err("[AUTH] Authentication requires TLS; use STLS")
            return
        if cmd.mechanism not in sasl.MECHANISMS:
            self.err("Unsupported authentication mechanism")
            return
        exchange = sasl.SaslServer(cmd.mechanism)
        step = exchange.start(cmd.initial)
        while isinstance(step, sasl.Challenge):
            step = await self.challenge(exchange, step.text)
        if isinstance(step, sasl.Failed):
            if step.reason != "cancelled":  # malformed or over-long: counts as a failed login of this client
                log.info("pop3.auth.malformed session=%s ip=%s reason=%s", self.sid, self.conn.peer_ip, step.detail)
                self.ctx.accounts.bad_exchange(self.conn.peer_ip)
            self.err("Authentication cancelled" if step.reason == "cancelled" else "Malformed SASL response")
            return
        await self.login(step.user, step.password)

    async def challenge(self, exchange: sasl.SaslServer, text: str) -> sasl.Step:
        """Send one "+ " challenge and feed the client's line to the exchange (RFC 5034 §4)."""
        self.conn.write(f"+ {text}\r\n".encode())
        await self.conn.drain()
        try:
            line = await self.conn.read_line(LINE_LIMIT, self.ctx.config.limits.command_timeout)
        except LineTooLong:
            return exchange.too_long()
        return exchange.respond(line)

    async def login(self, user: str, password: str) -> None:
        try:
            account = await self.ctx.accounts.authenticate(user, password, self.conn.peer_ip)
        except MailError as exc:
            log.info("pop3.auth.failed session=%s ip=%s user=%r", self.sid, self.conn.peer_ip, user)
            self.err(f"[AUTH] {self.ctx.text(exc.public_key)}")
            if exc.temporary:
                raise CloseSession() from exc
            return
        try:
            self.drop = await self.ctx.mailstore.open_maildrop(account)
        except MaildropBusy:
            self.err(f"[IN-USE] {self.ctx.text('maildrop_in_use')}")
            return
        except MailError:
            self.err("[SYS/TEMP] Cannot open maildrop")
            return
        self.bad = 0
        log.info("pop3.login session=%s ip=%s user=%s messages=%d", self.sid, self.conn.peer_ip,
                 account.address, len(self.drop.messages))
        self.ok(f"Logged in, {len(self.drop.messages)} messages")

    # --- TRANSACTION ----------------------------------------------------------
    def visible(self) -> list[tuple[int, MessageEntry]]:
        assert self.drop is not None
        return [(i, m) for i, m in enumerate(self.drop.messages, 1) if i not in self.deleted]

    def entry(self, n: int) -> MessageEntry | None:
        assert self.drop is not None
        if n < 1 or n > len(self.drop.messages) or n in self.deleted:
            self.err("No such message")
            return None
        return self.drop.messages[n - 1]

    async def cmd_stat(self, cmd: codec.Command) -> None:
        live = self.visible()
        self.ok(f"{len(live)} {sum(m.size for _, m in live)}")

    async def cmd_list(self, cmd: codec.Command) -> None:
        assert isinstance(cmd, codec.List)
        if cmd.msg is not None:
            if (m := self.entry(cmd.msg)) is not None:
                self.ok(f"{cmd.msg} {m.size}")
            return
        lines = "".join(f"{i} {m.size}\r\n" for i, m in self.visible())
        self.conn.write(f"+OK scan listing follows\r\n{lines}.\r\n".encode())

    async def cmd_uidl(self, cmd: codec.Command) -> None:
        assert isinstance(cmd, codec.Uidl) and self.drop is not None
        if cmd.msg is not None:
            if (m := self.entry(cmd.msg)) is not None:
                self.ok(f"{cmd.msg} {self.drop.uidl(m)}")
            return
        drop = self.drop
        lines = "".join(f"{i} {drop.uidl(m)}\r\n" for i, m in self.visible())
        self.conn.write(f"+OK unique-id listing follows\r\n{lines}.\r\n".encode())

    async def cmd_retr(self, cmd: codec.Command) -> None:
        assert isinstance(cmd, codec.Retr)
        if (m := self.entry(cmd.msg)) is None:
            return
        try:
            chunks = [c async for c in self.ctx.mailstore.read_chunks(m)] if m.size < 1 << 20 else None
        except OSError:
            self.err("[SYS/TEMP] Message unavailable")
            return
        self.ok(f"{m.size} octets")
        stuffer = codec.DotStuffer()
        if chunks is not None:
            self.conn.write(b"".join(stuffer.feed(c) for c in chunks) + stuffer.finish())
            return
        async for chunk in self.ctx.mailstore.read_chunks(m):
            self.conn.write(stuffer.feed(chunk))
            await self.conn.drain()
        self.conn.write(stuffer.finish())

    async def cmd_top(self, cmd: codec.Command) -> None:
        assert isinstance(cmd, codec.Top)
        if (m := self.entry(cmd.msg)) is None:
            return
        try:
            data = await self.ctx.mailstore.read_message(m)
        except OSError:
            self.err("[SYS/TEMP] Message unavailable")
            return
        stuffer = codec.DotStuffer()
        self.conn.write(b"+OK top of message follows\r\n" + stuffer.feed(codec.top_lines(data, cmd.lines))
                        + stuffer.finish())

    async def cmd_dele(self, cmd: codec.Command) -> None:
        assert isinstance(cmd, codec.Dele)
        if self.entry(cmd.msg) is not None:
            self.deleted.add(cmd.msg)
            self.ok(f"message {cmd.msg} deleted")

    async def cmd_rset(self, cmd: codec.Command) -> None:
        self.deleted.clear()
        self.ok(f"{len(self.visible())} messages")

    async def cmd_noop(self, cmd: codec.Command) -> None:
        self.ok()

    async def cmd_quit(self, cmd: codec.Command) -> None:
        drop = self.drop
        if drop is not None:  # UPDATE state: remove what was marked, then answer
            uids = [drop.messages[i - 1].uid for i in sorted(self.deleted)]
            try:
                removed = await self.ctx.mailstore.expunge(drop, uids)
            except MailError:
                self.err("[SYS/TEMP] Some deleted messages not removed")
                raise CloseSession() from None
            finally:
                self.ctx.mailstore.release(drop)
                self.drop = None
            log.info("pop3.logout session=%s user=%s deleted=%d", self.sid, drop.account.address, removed)
        self.ok("dizimail POP3 bye")
        raise CloseSession()
