"""One SMTP session (RFC 5321, with RFC 1870, 2920, 3030, 3207, 3461, 4954, 6152, 6531)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dizimail.codec import sasl
from dizimail.codec import smtp as codec
from dizimail.codec.body import BodyMeter
from dizimail.model.errors import MailError, TemporaryFailure
from dizimail.model.types import Account
from dizimail.net.connection import Connection, ConnectionClosed, LineTooLong
from dizimail.services.ingest import Envelope, Reception
from dizimail.services.policy.facts import Client, MessageFacts, Mode
from dizimail.services.policy.release import offer, release_at
from dizimail.services.policy.report import score, summary
from dizimail.services.policy.verdict import Action, Finding, Verdict
from dizimail.smtp import replies
from dizimail.smtp.replies import Reply

if TYPE_CHECKING:
    from dizimail.smtp.server import SmtpContext

log = logging.getLogger("dizimail.smtp")


class CloseSession(Exception):
    pass


@dataclass
class Transaction:
    """The envelope being built (MAIL, then each accepted RCPT) and the body streaming in (BDAT)."""

    envelope: Envelope
    utf8: bool = False
    bdat: Reception | None = None
    meter: BodyMeter = field(default_factory=lambda: BodyMeter(0))

    @property
    def count(self) -> int:
        return self.envelope.count


class SmtpSession:
    def __init__(self, ctx: SmtpContext, conn: Connection, mode: Mode, session_id: str) -> None:
        self.ctx = ctx
        self.conn = conn
        self.mode = mode
        self.sid = session_id
        self.helo: str | None = None
        self.esmtp = False
        self.connect_findings: list[Finding] = []  # what the scoring checks saw at connect, and at HELO
        self.helo_findings: list[Finding] = []
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

    def send(self, reply: Reply) -> None:
        self.reply(reply.code, reply.enhanced, reply.text)

    def refuse(self, reply: Reply) -> None:
        """A protocol error or a refusal: counted towards ``limits.max_bad_commands``."""
        self.bad += 1
        self.send(reply)

    def speak(self, verdict: Verdict) -> None:
        """A policy refusal, in the verdict's words; permanent ones count as errors (a client walking a
        list of guessed recipients is cut off), temporary ones do not."""
        if verdict.action is Action.REJECT:
            self.bad += 1
        self.send(replies.of_verdict(verdict))

    def client(self) -> Client:
        """What the policy knows of this client now."""
        return Client(self.conn.peer_ip, self.mode, self.conn.tls is not None, self.helo, self.account)

    async def flush(self) -> None:
        if not self.conn.has_pending():  # RFC 2920: replies to a pipelined group go out together
            await self.conn.drain()

    async def run(self) -> None:
        limits = self.ctx.config.limits
        verdict = await self.ctx.policy.connect(self.client(), self.connect_findings)
        if not verdict.accepted:  # RFC 5321 §3.1: a refusing server still greets, with the refusal
            self.send(replies.of_verdict(verdict))
            await self.conn.drain_quietly()
            return
        try:
            if not await self.greet():
                return
            while True:
                try:
                    line = await self.conn.read_line(limits.max_command_line, limits.command_timeout)
                except LineTooLong:
                    self.refuse(replies.LINE_TOO_LONG)
                else:
                    await self.dispatch(line)
                if self.bad >= limits.max_bad_commands:
                    self.send(replies.too_many_errors(self.ctx.hostname))
                    await self.conn.drain_quietly()
                    return
                await self.flush()
        except CloseSession:
            await self.conn.drain_quietly()
        except TimeoutError:
            self.send(replies.timeout(self.ctx.hostname))
            await self.conn.drain_quietly()
        except (ConnectionClosed, ConnectionError):
            pass
        finally:
            self.abort_bdat()

    async def greet(self) -> bool:
        """The greeting; held after its first line for a client the pregreet test judges. False: the
        client talked too early and the policy refuses it (its first command gets the refusal)."""
        greeting = replies.greeting(self.ctx.hostname)
        wait = await self.ctx.policy.pregreet_wait(self.client())
        if wait:
            self.conn.write(f"220-{greeting.text}\r\n".encode())
            await self.conn.drain()
            early = await self.conn.wait_for_input(wait)
            verdict = await self.ctx.policy.greeted(self.client(), early, self.connect_findings)
            self.conn.write(f"220 {self.ctx.hostname}\r\n".encode())  # the greeting's last line
            if not verdict.accepted:
                limits = self.ctx.config.limits
                with contextlib.suppress(LineTooLong):
                    await self.conn.read_line(limits.max_command_line, limits.command_timeout)
                self.speak(verdict)
                await self.conn.drain_quietly()
                return False
        else:
            self.send(greeting)
        await self.conn.drain()
        return True

    async def dispatch(self, line: bytes) -> None:
        try:
            command = codec.parse_command(line)
        except codec.SmtpSyntaxError as exc:
            self.refuse(Reply(exc.code, exc.enhanced, exc.text))
            return
        if self.tx is not None and self.tx.bdat is not None and not isinstance(
                command, (codec.Bdat, codec.Rset, codec.Quit, codec.Noop)):
            self.refuse(replies.BDAT_ONLY)
            return
        await self.handlers[type(command)](command)

    # --- greeting and state -------------------------------------------------
    def capabilities(self) -> list[str]:
        caps = ["PIPELINING", f"SIZE {self.ctx.policy.max_message_size(self.client())}", "8BITMIME", "SMTPUTF8",
                "ENHANCEDSTATUSCODES", "DSN", "CHUNKING"]
        if self.conn.tls is None and self.ctx.tls is not None:
            caps.append("STARTTLS")
        if self.mode is not Mode.MX and self.ctx.config.smtp.future_release_max > 0:
            caps.append(offer(self.ctx.config.smtp.future_release_max, time.time()))
        if self.account is None and self.offers_auth() and (
                self.conn.tls is not None or self.ctx.accounts.plaintext_allowed(self.conn.peer_ip)):
            caps.append("AUTH " + " ".join(sasl.MECHANISMS))
        caps.append("HELP")
        return caps

    async def cmd_ehlo(self, cmd: codec.Command) -> None:
        assert isinstance(cmd, codec.Ehlo)
        self.abort_bdat()
        self.tx = None
        findings: list[Finding] = []
        verdict = await self.ctx.policy.helo(Client(self.conn.peer_ip, self.mode, self.conn.tls is not None,
                                                    cmd.domain, self.account), findings)
        if not verdict.accepted:
            self.speak(verdict)
            return
        self.helo, self.esmtp, self.helo_findings = cmd.domain, cmd.extended, findings
        if cmd.extended:
            self.reply(250, "", replies.hello(self.ctx.hostname, cmd.domain, self.conn.peer_ip), *self.capabilities())
        else:
            self.reply(250, "", replies.hello(self.ctx.hostname, cmd.domain, self.conn.peer_ip))

    async def cmd_rset(self, cmd: codec.Command) -> None:
        self.abort_bdat()
        self.tx = None
        self.send(replies.OK)

    async def cmd_noop(self, cmd: codec.Command) -> None:
        self.send(replies.OK)

    async def cmd_vrfy(self, cmd: codec.Command) -> None:
        self.send(replies.VRFY)

    async def cmd_help(self, cmd: codec.Command) -> None:
        self.reply(214, "2.0.0", *replies.HELP)

    async def cmd_quit(self, cmd: codec.Command) -> None:
        self.send(replies.bye(self.ctx.hostname))
        raise CloseSession()

    async def cmd_starttls(self, cmd: codec.Command) -> None:
        if self.ctx.tls is None or self.conn.tls is not None:
            self.refuse(replies.TLS_UNAVAILABLE if self.ctx.tls is None else replies.TLS_ACTIVE)
            return
        self.conn.pause_for_tls()
        self.send(replies.READY_TLS)
        await self.conn.drain()
        try:
            await self.conn.start_tls(self.ctx.tls, 30)
        except Exception as exc:
            log.info("smtp.tls.failed session=%s ip=%s error=%s", self.sid, self.conn.peer_ip, exc)
            raise ConnectionClosed() from exc
        # RFC 3207 §4.2: forget everything learnt before the handshake.
        self.helo, self.esmtp, self.tx, self.account, self.helo_findings = None, False, None, None, []

    # --- AUTH (RFC 4954) ------------------------------------------------------
    def offers_auth(self) -> bool:
        return self.mode is not Mode.MX or self.ctx.mx_auth

    async def cmd_auth(self, cmd: codec.Command) -> None:
        assert isinstance(cmd, codec.Auth)
        if self.helo is None or not self.esmtp:
            self.refuse(replies.NEED_EHLO)
        elif not self.offers_auth():
            self.refuse(replies.AUTH_NOT_HERE)
        elif self.account is not None:
            self.refuse(replies.ALREADY_AUTHENTICATED)
        elif self.tx is not None:
            self.refuse(replies.AUTH_IN_TRANSACTION)
        elif self.conn.tls is None and not self.ctx.accounts.plaintext_allowed(self.conn.peer_ip):
            self.refuse(replies.ENCRYPTION_REQUIRED)
        elif cmd.mechanism not in sasl.MECHANISMS:
            self.refuse(replies.UNKNOWN_MECHANISM)
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
                self.send(replies.of_error(exc))
                if exc.temporary:
                    raise CloseSession() from exc
                return
            log.info("smtp.auth.ok session=%s ip=%s user=%s", self.sid, self.conn.peer_ip, self.account.address)
            self.send(replies.AUTH_OK)

    async def sasl_step(self, exchange: sasl.SaslServer, challenge: str) -> sasl.Step:
        """Send one 334 challenge and feed the client's line to the exchange (RFC 4954 §4)."""
        self.send(replies.challenge(challenge))
        await self.conn.drain()
        try:
            line = await self.conn.read_line(self.ctx.config.limits.max_command_line,
                                             self.ctx.config.limits.command_timeout)
        except LineTooLong:
            return exchange.too_long()
        return exchange.respond(line)

    def sasl_failed(self, failed: sasl.Failed) -> None:
        if failed.reason == "cancelled":
            self.refuse(replies.AUTH_CANCELLED)
            return
        log.info("smtp.auth.malformed session=%s ip=%s reason=%s", self.sid, self.conn.peer_ip, failed.detail)
        self.ctx.accounts.bad_exchange(self.conn.peer_ip)
        if failed.reason == "too-long":
            self.refuse(replies.AUTH_LINE_TOO_LONG)
        else:
            self.refuse(replies.CANNOT_DECODE)

    # --- the transaction -------------------------------------------------------
    async def cmd_mail(self, cmd: codec.Command) -> None:
        assert isinstance(cmd, codec.MailFrom)
        if self.helo is None:
            self.refuse(replies.NEED_HELO)
        elif self.tx is not None:
            self.refuse(replies.NESTED_MAIL)
        elif not self.esmtp and cmd.params:
            self.refuse(replies.PARAMS_NEED_EHLO)
        elif cmd.address is not None and cmd.address.is_utf8 and "SMTPUTF8" not in cmd.params:
            self.refuse(replies.NEEDS_SMTPUTF8)
        else:
            sender = cmd.address.text if cmd.address is not None else ""
            findings = [*self.connect_findings, *self.helo_findings]
            verdict = await self.ctx.policy.mail(self.client(), sender, cmd.params, findings)
            if not verdict.accepted:
                self.speak(verdict)
                return
            longest = self.ctx.config.smtp.future_release_max if self.mode is not Mode.MX and self.account else 0.0
            try:
                release = release_at(cmd.params, time.time(), longest)
            except MailError as exc:
                self.refuse(replies.of_error(exc))
                return
            params = {k: v or "" for k, v in cmd.params.items() if k not in ("HOLDFOR", "HOLDUNTIL")}
            if release is not None:  # held in the queue until then (services.ingest)
                params["RELEASE"] = f"{release:.0f}"
            self.tx = Transaction(Envelope(sender=sender, params=params, findings=findings,
                                           submitted=self.account is not None), utf8="SMTPUTF8" in cmd.params)
            self.send(replies.SENDER_OK)

    async def cmd_rcpt(self, cmd: codec.Command) -> None:
        assert isinstance(cmd, codec.RcptTo)
        tx = self.tx
        if tx is None:
            self.refuse(replies.NEED_MAIL_FOR_RCPT)
            return
        if cmd.address.is_utf8 and not tx.utf8:
            self.refuse(replies.NEEDS_SMTPUTF8)
            return
        address = cmd.address.text.lower() if not cmd.postmaster else await self.ctx.postmaster()
        params = dict(cmd.params)
        params.setdefault("SIZE", tx.envelope.params.get("SIZE"))  # the quota check weighs the declared size
        decision = await self.ctx.policy.rcpt(self.client(), tx.envelope, address, cmd.address.text, params)
        if not decision.verdict.accepted:
            self.speak(decision.verdict)
            return
        tx.envelope.add(address, decision.resolution, cmd.params.get("NOTIFY"), cmd.params.get("ORCPT"))
        tx.envelope.findings.extend(decision.findings)
        self.send(replies.RCPT_OK)

    def begin_reception(self, tx: Transaction) -> Reception:
        reception = self.ctx.ingest.begin()
        env = tx.envelope
        single = None
        if env.count == 1:
            single = (env.local[0][0] if env.local else env.hold[0][0] if env.hold else
                      env.remote[0].address if env.remote else env.lists[0][0])
        protocol = ("UTF8" if tx.utf8 else "") + ("ESMTP" if self.esmtp else "SMTP") + \
            ("S" if self.conn.tls else "") + ("A" if self.account else "")
        reception.write(self.ctx.ingest.received_header(
            reception, helo=self.helo or "unknown", client_ip=self.conn.peer_ip, client_name=self.client_name(),
            protocol=protocol, recipient=single, tls=self.conn.tls_description()))
        return reception

    def client_name(self) -> str:
        """The client's forward-confirmed reverse name (the iprev check's), else "unknown"."""
        return next((f.comment for f in self.connect_findings if f.method == "iprev" and f.result == "pass"
                     and f.comment), "unknown")

    def new_meter(self) -> BodyMeter:
        return BodyMeter(self.ctx.policy.max_message_size(self.client()), self.ctx.hostname)

    async def cmd_data(self, cmd: codec.Command) -> None:
        tx = self.tx
        if tx is None:
            self.refuse(replies.NEED_MAIL)
            return
        if not tx.count:
            self.refuse(replies.NO_RECIPIENTS)
            return
        limits = self.ctx.config.limits
        self.send(replies.START_DATA)
        await self.conn.drain()
        reception = self.begin_reception(tx)
        decoder = codec.DataDecoder(self.ctx.policy.max_message_size(self.client()), self.ctx.hostname)
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
        """Ask the policy about the whole message, then commit; the 250 goes out only after the commit.
        The message's size is reserved in the node's check memory meanwhile (the checks read it whole):
        when that is spent, 451 and the sender tries again later (a message alone always fits)."""
        checking = self.ctx.checking
        if not checking.take(meter.size, alone=True):
            reception.abort()
            log.warning("smtp.data.busy session=%s size=%d in_use=%d", self.sid, meter.size, self.ctx.checking.in_use)
            self.send(replies.of_error(TemporaryFailure("too many messages being checked")))
            return
        try:
            await self._finish_message(reception, tx, meter)
        finally:
            self.ctx.checking.give(meter.size)

    async def _finish_message(self, reception: Reception, tx: Transaction, meter: BodyMeter) -> None:
        client = self.client()
        message = MessageFacts(meter.size, meter.too_big, meter.bare_lf, meter.longest_line,
                               received=meter.trace.received, own_received=meter.trace.own,
                               verdict_fields=meter.trace.verdicts,
                               read=reception.reader(self.ctx.config.limits.max_message_size))
        verdict = await self.ctx.policy.data(client, tx.envelope, message, tx.envelope.findings)
        if not verdict.accepted:
            reception.abort()
            self.speak(verdict)
            return
        env = tx.envelope
        env.dkim = await self.ctx.policy.signing_key(client, env)
        try:
            result = await self.ctx.ingest.commit(reception, env)
        except MailError as exc:
            log.info("smtp.data.failed session=%s id=%s error=%s", self.sid, reception.queue_id, exc.detail)
            self.send(replies.of_error(exc))
            return
        self.accepted += 1
        log.info("smtp.data.accepted session=%s id=%s from=<%s> rcpts=%d size=%d%s", self.sid,
                 reception.queue_id, env.sender, env.count, meter.size,
                 f" score={score(env.findings):g} findings={summary(env.findings)}" if env.findings else "")
        self.send(replies.queued(reception.queue_id, len(result.refused)))

    async def cmd_bdat(self, cmd: codec.Command) -> None:
        assert isinstance(cmd, codec.Bdat)
        limits = self.ctx.config.limits
        tx = self.tx
        keep = tx is not None and tx.count > 0
        if keep and tx is not None and tx.bdat is None:
            tx.bdat = self.begin_reception(tx)
            tx.meter = self.new_meter()
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
            self.refuse(replies.NEED_MAIL)
            return
        if not tx.count:
            self.refuse(replies.NO_RECIPIENTS)
            return
        if not cmd.last:
            self.send(replies.TOO_BIG if tx.meter.too_big else replies.chunk_received(cmd.size))
            return
        reception, meter = tx.bdat, tx.meter
        self.tx = None
        assert reception is not None
        await self.finish_message(reception, tx, meter)

    def abort_bdat(self) -> None:
        if self.tx is not None and self.tx.bdat is not None:
            self.tx.bdat.abort()
            self.tx.bdat = None
