"""One SMTP session (RFC 5321, with RFC 1870, 2920, 3030, 3207, 3461, 4954, 6152, 6531)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dizimail.codec import sasl
from dizimail.codec import smtp as codec
from dizimail.codec.body import BodyMeter
from dizimail.model.errors import MailError
from dizimail.model.types import Account, QueuedRecipient
from dizimail.net.connection import Connection, ConnectionClosed, LineTooLong
from dizimail.services.ingest import Envelope, Reception

if TYPE_CHECKING:
    from dizimail.smtp.server import SmtpContext

log = logging.getLogger("dizimail.smtp")


class CloseSession(Exception):
    pass


@dataclass
class Transaction:
    sender: str
    params: dict[str, str | None]
    local: list[tuple[str, Account]] = field(default_factory=list)
    remote: list[QueuedRecipient] = field(default_factory=list)
    hold: list[tuple[str, Account]] = field(default_factory=list)
    utf8: bool = False
    bdat: Reception | None = None
    meter: BodyMeter = field(default_factory=lambda: BodyMeter(0))

    @property
    def count(self) -> int:
        return len(self.local) + len(self.remote) + len(self.hold)


class SmtpSession:
    def __init__(self, ctx: SmtpContext, conn: Connection, mode: str, session_id: str) -> None:
        self.ctx = ctx
        self.conn = conn
        self.mode = mode  # mx | submission | smtps
        self.sid = session_id
        self.helo: str | None = None
        self.esmtp = False
        self.account: Account | None = None
        self.tx: Transaction | None = None
        self.bad = 0
        self.accepted = 0
        self.handlers: dict[type, Callable[[codec.Command], Awaitable[None]]] = {
            codec.Ehlo: self.cmd_ehlo, codec.MailFrom: self.cmd_mail, codec.RcptTo: self.cmd_rcpt,
            codec.Data: self.cmd_data, codec.Bdat: self.cmd_bdat, codec.Rset: self.cmd_rset,
            codec.Noop: self.cmd_noop, codec.Vrfy: self.cmd_vrfy, codec.Help: self.cmd_help,
            codec.Quit: self.cmd_quit, codec.StartTls: self.cmd_starttls, codec.Auth: self.cmd_auth,
        }

    # --- plumbing --------------------------------------------------------
    def reply(self, code: int, enhanced: str, *lines: str) -> None:
        out = []
        for i, text in enumerate(lines):
            sep = "-" if i < len(lines) - 1 else " "
            out.append(f"{code}{sep}{enhanced + ' ' if enhanced else ''}{text}\r\n")
        self.conn.write("".join(out).encode("utf-8"))

    async def flush(self) -> None:
        if not self.conn.has_pending():  # RFC 2920: replies to a pipelined group go out together
            await self.conn.drain()

    def fail(self, code: int, enhanced: str, text: str) -> None:
        self.bad += 1
        self.reply(code, enhanced, text)

    def reply_error(self, err: MailError) -> None:
        self.reply(err.code, err.enhanced, self.ctx.text(err.public_key))

    async def run(self) -> None:
        limits = self.ctx.config.limits
        self.reply(220, "", f"{self.ctx.hostname} ESMTP dizimail")
        try:
            await self.conn.drain()
            while True:
                try:
                    line = await self.conn.read_line(limits.max_command_line, limits.command_timeout)
                except LineTooLong:
                    self.fail(500, "5.5.6", "Line too long")
                else:
                    await self.dispatch(line)
                if self.bad >= limits.max_bad_commands:
                    self.reply(421, "4.7.0", f"{self.ctx.hostname} Too many errors, closing connection")
                    await self.conn.drain()
                    return
                await self.flush()
        except CloseSession:
            await self.conn.drain()
        except TimeoutError:
            self.reply(421, "4.4.2", f"{self.ctx.hostname} Timeout, closing connection")
            await self.safe_drain()
        except (ConnectionClosed, ConnectionError):
            pass
        finally:
            self.abort_bdat()

    async def safe_drain(self) -> None:
        try:
            await asyncio.wait_for(self.conn.drain(), 5)
        except (TimeoutError, OSError):
            pass

    async def dispatch(self, line: bytes) -> None:
        try:
            command = codec.parse_command(line)
        except codec.SmtpSyntaxError as exc:
            self.fail(exc.code, exc.enhanced, exc.text)
            return
        if self.tx is not None and self.tx.bdat is not None and not isinstance(
                command, (codec.Bdat, codec.Rset, codec.Quit, codec.Noop)):
            self.fail(503, "5.5.1", "Only BDAT, RSET, NOOP or QUIT during a BDAT transfer")
            return
        await self.handlers[type(command)](command)

    # --- greeting and state -------------------------------------------------
    def capabilities(self) -> list[str]:
        caps = ["PIPELINING", f"SIZE {self.ctx.config.limits.max_message_size}", "8BITMIME", "SMTPUTF8",
                "ENHANCEDSTATUSCODES", "DSN", "CHUNKING"]
        if self.conn.tls is None and self.ctx.tls is not None:
            caps.append("STARTTLS")
        if self.account is None and (self.conn.tls is not None or self.ctx.accounts.plaintext_allowed(self.conn.peer_ip)):
            caps.append("AUTH " + " ".join(sasl.MECHANISMS))
        caps.append("HELP")
        return caps

    async def cmd_ehlo(self, cmd: codec.Command) -> None:
        assert isinstance(cmd, codec.Ehlo)
        self.abort_bdat()
        self.tx = None
        self.helo, self.esmtp = cmd.domain, cmd.extended
        if cmd.extended:
            self.reply(250, "", f"{self.ctx.hostname} Hello {cmd.domain} [{self.conn.peer_ip}]",
                       *self.capabilities())
        else:
            self.reply(250, "", f"{self.ctx.hostname} Hello {cmd.domain} [{self.conn.peer_ip}]")

    async def cmd_rset(self, cmd: codec.Command) -> None:
        self.abort_bdat()
        self.tx = None
        self.reply(250, "2.0.0", "Ok")

    async def cmd_noop(self, cmd: codec.Command) -> None:
        self.reply(250, "2.0.0", "Ok")

    async def cmd_vrfy(self, cmd: codec.Command) -> None:
        self.reply(252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery")

    async def cmd_help(self, cmd: codec.Command) -> None:
        self.reply(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT "
                   "STARTTLS AUTH", "See RFC 5321")

    async def cmd_quit(self, cmd: codec.Command) -> None:
        self.reply(221, "2.0.0", f"{self.ctx.hostname} Bye")
        raise CloseSession()

    async def cmd_starttls(self, cmd: codec.Command) -> None:
        if self.ctx.tls is None or self.conn.tls is not None:
            self.fail(503, "5.5.1", "TLS not available" if self.ctx.tls is None else "TLS already active")
            return
        self.conn.pause_for_tls()
        self.reply(220, "2.0.0", "Ready to start TLS")
        await self.conn.drain()
        try:
            await self.conn.start_tls(self.ctx.tls, 30)
        except Exception as exc:
            log.info("smtp.tls.failed session=%s ip=%s error=%s", self.sid, self.conn.peer_ip, exc)
            raise ConnectionClosed() from exc
        # RFC 3207 §4.2: forget everything learnt before the handshake.
        self.helo, self.esmtp, self.tx, self.account = None, False, None, None

    # --- AUTH (RFC 4954) ------------------------------------------------------
    async def cmd_auth(self, cmd: codec.Command) -> None:
        assert isinstance(cmd, codec.Auth)
        if self.helo is None or not self.esmtp:
            self.fail(503, "5.5.1", "Send EHLO first")
        elif self.account is not None:
            self.fail(503, "5.5.1", "Already authenticated")
        elif self.tx is not None:
            self.fail(503, "5.5.1", "AUTH not allowed during a mail transaction")
        elif self.conn.tls is None and not self.ctx.accounts.plaintext_allowed(self.conn.peer_ip):
            self.fail(538, "5.7.11", "Encryption required for requested authentication mechanism")
        elif cmd.mechanism not in sasl.MECHANISMS:
            self.fail(504, "5.5.4", "Unrecognized authentication type")
        else:
            exchange = sasl.SaslServer(cmd.mechanism)
            step = exchange.start(cmd.initial)
            while isinstance(step, sasl.Challenge):
                step = await self.sasl_step(exchange, step.text)
            if isinstance(step, sasl.Failed):
                self.sasl_failed(step)
                return
            try:
                self.account = await self.ctx.accounts.authenticate(step.user, step.password, self.conn.peer_ip)
            except MailError as exc:
                self.bad += 1
                log.info("smtp.auth.failed session=%s ip=%s user=%r", self.sid, self.conn.peer_ip, step.user)
                self.reply_error(exc)
                if exc.temporary:
                    raise CloseSession() from exc
                return
            log.info("smtp.auth.ok session=%s ip=%s user=%s", self.sid, self.conn.peer_ip, self.account.address)
            self.reply(235, "2.7.0", "Authentication successful")

    async def sasl_step(self, exchange: sasl.SaslServer, challenge: str) -> sasl.Step:
        """Send one 334 challenge and feed the client's line to the exchange (RFC 4954 §4)."""
        self.reply(334, "", challenge)
        await self.conn.drain()
        try:
            line = await self.conn.read_line(self.ctx.config.limits.max_command_line,
                                             self.ctx.config.limits.command_timeout)
        except LineTooLong:
            return exchange.too_long()
        return exchange.respond(line)

    def sasl_failed(self, failed: sasl.Failed) -> None:
        if failed.reason == "cancelled":
            self.fail(501, "5.7.0", "Authentication cancelled")
            return
        log.info("smtp.auth.malformed session=%s ip=%s reason=%s", self.sid, self.conn.peer_ip, failed.detail)
        self.ctx.accounts.bad_exchange(self.conn.peer_ip)
        if failed.reason == "too-long":
            self.fail(500, "5.5.6", "Authentication Exchange line is too long")  # RFC 4954 §6
        else:
            self.fail(501, "5.5.2", "Cannot decode response")

    # --- the transaction -------------------------------------------------------
    async def cmd_mail(self, cmd: codec.Command) -> None:
        assert isinstance(cmd, codec.MailFrom)
        limits = self.ctx.config.limits
        if self.helo is None:
            self.fail(503, "5.5.1", "Send HELO/EHLO first")
        elif self.tx is not None:
            self.fail(503, "5.5.1", "Nested MAIL command")
        elif self.mode != "mx" and self.account is None:
            self.fail(530, "5.7.0", "Authentication required")
        elif not self.esmtp and cmd.params:
            self.fail(555, "5.5.4", "MAIL parameters require EHLO")
        elif cmd.address is not None and cmd.address.is_utf8 and "SMTPUTF8" not in cmd.params:
            self.fail(553, "5.6.7", "Address requires SMTPUTF8")
        elif int(cmd.params.get("SIZE") or 0) > limits.max_message_size:
            self.reply(552, "5.3.4", "Message size exceeds fixed maximum message size")
        elif self.account is not None and cmd.address is not None and not await self.may_send_as(
                cmd.address.text):
            self.fail(553, "5.7.1", f"Sender address rejected: not owned by user {self.account.address}")
        else:
            sender = cmd.address.text if cmd.address is not None else ""
            self.tx = Transaction(sender, dict(cmd.params), utf8="SMTPUTF8" in cmd.params)
            self.reply(250, "2.1.0", "Ok")

    async def may_send_as(self, address: str) -> bool:
        """A user sends as their own addresses; on a gateway, an authenticated account (the inner server's
        relay login) may also send for the domains the gateway routes inward."""
        assert self.account is not None
        resolution = await self.ctx.router.resolve(address.lower())
        if resolution.kind == "remote" and resolution.ours:
            return True
        return any(a.id == self.account.id for a in resolution.accounts)

    async def cmd_rcpt(self, cmd: codec.Command) -> None:
        assert isinstance(cmd, codec.RcptTo)
        tx = self.tx
        if tx is None:
            self.fail(503, "5.5.1", "Need MAIL before RCPT")
            return
        if tx.count >= self.ctx.config.limits.max_recipients:
            self.reply(452, "4.5.3", "Too many recipients")
            return
        if cmd.address.is_utf8 and not tx.utf8:
            self.fail(553, "5.6.7", "Address requires SMTPUTF8")
            return
        address = cmd.address.text.lower() if not cmd.postmaster else await self.ctx.postmaster()
        resolution = await self.ctx.router.resolve(address)
        kind = resolution.kind
        if kind == "unknown":
            self.fail(550, "5.1.1", f"<{cmd.address.text}>: Recipient address rejected: User unknown")
        elif kind in ("suspended", "domain_suspended"):
            self.fail(550, "5.2.1", f"<{cmd.address.text}>: Recipient address rejected: Mailbox disabled")
        elif kind == "remote" and (not resolution.ours or _sender_routed(address)) and not await self.may_relay():
            # Routed domains are ours to relay, but never with routing hidden in the local part
            # (user%host@, user!host@, "user@host"@): those are the classic open-relay tricks.
            self.fail(554, "5.7.1", f"<{cmd.address.text}>: Relay access denied")
        elif kind == "hold":
            if all(r != address for r, _ in tx.hold):
                tx.hold.extend((address, a) for a in resolution.accounts)
            self.reply(250, "2.1.5", "Ok")
        else:
            size = int(tx.params.get("SIZE") or 0)
            for account in resolution.accounts:
                if account.quota_bytes and account.used_bytes + size >= account.quota_bytes:
                    self.reply(452, "4.2.2", f"<{cmd.address.text}>: Mailbox full")
                    return
            for account in resolution.accounts:
                if all(a.id != account.id for _, a in tx.local):
                    tx.local.append((address, account))
            for remote in resolution.remote:
                if all(r.address != remote for r in tx.remote):
                    tx.remote.append(QueuedRecipient(remote, notify=cmd.params.get("NOTIFY"),
                                                     orcpt=cmd.params.get("ORCPT")))
            self.reply(250, "2.1.5", "Ok")

    async def may_relay(self) -> bool:
        return self.account is not None or await self.ctx.relay.may_relay(self.conn.peer_ip)

    async def envelope(self, tx: Transaction) -> Envelope:
        params = {k: v or "" for k, v in tx.params.items()}
        # Submitted mail from a domain with a key is DKIM-signed once, here at ingest.
        dkim = await self.ctx.dkim.key_for(tx.sender) if self.account is not None and tx.remote else None
        return Envelope(sender=tx.sender, local=list(tx.local), remote=list(tx.remote), params=params,
                        hold=list(tx.hold), dkim=dkim)

    def begin_reception(self, tx: Transaction) -> Reception:
        reception = self.ctx.ingest.begin()
        single = None
        if tx.count == 1:
            single = tx.local[0][0] if tx.local else tx.hold[0][0] if tx.hold else tx.remote[0].address
        protocol = ("UTF8" if tx.utf8 else "") + ("ESMTP" if self.esmtp else "SMTP") + \
            ("S" if self.conn.tls else "") + ("A" if self.account else "")
        reception.write(self.ctx.ingest.received_header(
            reception, helo=self.helo or "unknown", client_ip=self.conn.peer_ip, client_name="unknown",
            protocol=protocol, recipient=single, tls=self.conn.tls_description()))
        return reception

    async def cmd_data(self, cmd: codec.Command) -> None:
        tx = self.tx
        if tx is None:
            self.fail(503, "5.5.1", "Need MAIL command")
            return
        if not tx.count:
            self.fail(554, "5.5.1", "No valid recipients")
            return
        limits = self.ctx.config.limits
        self.reply(354, "", "End data with <CR><LF>.<CR><LF>")
        await self.conn.drain()
        reception = self.begin_reception(tx)
        decoder = codec.DataDecoder(limits.max_message_size)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limits.data_timeout
        try:
            while True:
                chunk = await self.conn.read_some(max(0.1, deadline - loop.time()))
                body, rest = decoder.feed(chunk)
                if body:
                    reception.write(body)
                if rest is not None:
                    self.conn.unread(rest)
                    break
        except BaseException:
            reception.abort()
            raise
        self.tx = None
        await self.finish_message(reception, tx, decoder.meter)

    async def finish_message(self, reception: Reception, tx: Transaction, meter: BodyMeter) -> None:
        """Refuse what breaks a limit, else commit; the 250 goes out only after the commit."""
        limits = self.ctx.config.limits
        size = meter.size
        if meter.too_big:
            reception.abort()
            self.reply(552, "5.3.4", "Message size exceeds fixed maximum message size")
        elif meter.bare_lf and self.ctx.config.smtp.reject_bare_lf:
            reception.abort()
            self.reply(550, "5.5.2", "Message contains bare LF line endings")
        elif meter.longest_line > limits.max_header_line:
            reception.abort()
            self.reply(550, "5.5.2", "Message contains an over-long line")
        else:
            try:
                result = await self.ctx.ingest.commit(reception, await self.envelope(tx))
            except MailError as exc:
                log.info("smtp.data.failed session=%s id=%s error=%s", self.sid, reception.queue_id, exc.detail)
                self.reply_error(exc)
                return
            self.accepted += 1
            log.info("smtp.data.accepted session=%s id=%s from=<%s> rcpts=%d size=%d", self.sid,
                     reception.queue_id, tx.sender, tx.count, size)
            self.reply(250, "2.0.0", f"Ok: queued as {reception.queue_id}"
                       + (f" ({len(result.over_quota)} deferred: mailbox full)" if result.over_quota else ""))

    async def cmd_bdat(self, cmd: codec.Command) -> None:
        assert isinstance(cmd, codec.Bdat)
        limits = self.ctx.config.limits
        tx = self.tx
        keep = tx is not None and tx.count > 0
        if keep and tx is not None and tx.bdat is None:
            tx.bdat = self.begin_reception(tx)
            tx.meter = BodyMeter(limits.max_message_size)
        # The chunk is on the wire whatever we answer: always consume it (RFC 3030 §2).
        remaining = cmd.size
        while remaining:
            data = await self.conn.read_exactly(min(remaining, 1 << 20), limits.data_timeout)
            remaining -= len(data)
            if keep and tx is not None and tx.bdat is not None and not tx.meter.too_big:
                tx.meter.feed(data)
                if not tx.meter.too_big:
                    tx.bdat.write(data)
        if tx is None:
            self.fail(503, "5.5.1", "Need MAIL command")
            return
        if not tx.count:
            self.fail(554, "5.5.1", "No valid recipients")
            return
        if not cmd.last:
            if tx.meter.too_big:
                self.reply(552, "5.3.4", "Message size exceeds fixed maximum message size")
            else:
                self.reply(250, "2.0.0", f"{cmd.size} octets received")
            return
        reception, meter = tx.bdat, tx.meter
        self.tx = None
        assert reception is not None
        await self.finish_message(reception, tx, meter)

    def abort_bdat(self) -> None:
        if self.tx is not None and self.tx.bdat is not None:
            self.tx.bdat.abort()
            self.tx.bdat = None


def _sender_routed(address: str) -> bool:
    """RFC 1123 §5.2.16 / RFC 2505 §2.3: a local part that itself carries a route."""
    local = address.rpartition("@")[0]
    return any(c in local for c in "%!@:")
