"""Outbound SMTP client sessions (implements interfaces.outbound.Outbound).

Our own client on the same buffered connection as the servers, rather than
aiosmtplib: aiosmtplib parses one reply per network read and drops what
follows, so it cannot pipeline (RFC 2920), and it holds whole messages in
memory (docs/architecture.md). Replies are parsed by codec.smtp_client.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import ssl
from collections.abc import AsyncIterator

from dizimail.codec.smtp_client import DataEncoder, Reply, ReplyError, ReplyParser, command, parse_ehlo
from dizimail.interfaces.outbound import ConnectFailed, Envelope, Hop, SessionLost, TransactionResult
from dizimail.net.connection import Connection, ConnectionClosed
from dizimail.util.idn import ascii_domain

log = logging.getLogger("dizimail.smtp.client")
FLUSH = 256 * 1024


class SmtpClientSession:
    def __init__(self, conn: Connection, hop: Hop, timeout: float) -> None:
        self.conn = conn
        self.hop = hop
        self.timeout = timeout
        self.parser = ReplyParser()
        self.pending: list[Reply] = []
        self.extensions: dict[str, str] = {}
        self.broken = False
        self.dot_sent = False  # the end of a message went out: a lost reply now means "maybe delivered"
        self.peer_verified = False  # TLS with a certificate that verified, or matched the pinned fingerprint

    @property
    def usable(self) -> bool:
        return not self.broken and not self.conn._closed

    @property
    def tls(self) -> str | None:
        return self.conn.tls_description()

    def supports(self, keyword: str) -> bool:
        return keyword.upper() in self.extensions

    async def read_reply(self) -> Reply:
        while not self.pending:
            chunk = await self.conn.read_some(self.timeout)
            if not chunk:
                raise ConnectionClosed()
            self.pending.extend(self.parser.feed(chunk))
        return self.pending.pop(0)

    async def execute(self, line: bytes) -> Reply:
        self.conn.write(line)
        await self.conn.drain()
        return await self.read_reply()

    # --- session set-up --------------------------------------------------
    async def handshake(self, helo: str, tls_context: ssl.SSLContext | None) -> None:
        greeting = await self.read_reply()
        if greeting.code != 220:
            raise ConnectFailed(f"greeting {greeting}", greeting)
        await self.ehlo(helo)
        hop = self.hop
        if hop.tls != "none" and "STARTTLS" in self.extensions and tls_context is not None:
            reply = await self.execute(command("STARTTLS"))
            if reply.code != 220:
                if hop.tls == "verify":
                    raise ConnectFailed(f"STARTTLS refused: {reply}", reply)
            else:
                self.conn.pause_for_tls()
                self.parser = ReplyParser()
                await self.conn.start_tls(tls_context, self.timeout, server_side=False,
                                          server_hostname=hop.server_name or hop.host)
                self.peer_verified = self._check_peer(tls_context)
                await self.ehlo(helo)
        elif hop.tls == "verify":
            raise ConnectFailed("TLS required by policy but STARTTLS is not offered")
        if hop.username:
            if self.conn.tls is None:
                raise ConnectFailed("will not send credentials without TLS")
            if not self.peer_verified:  # unreachable today (see SmtpClient.context): a guard, not a path
                raise ConnectFailed("will not send credentials: the server's certificate is not verified")
            if not hop.password:  # not set, or set a moment ago and not seen yet: try again later
                raise ConnectFailed("no password for the smarthost's user (dizimail secret set smarthost-password)")
            token = base64.b64encode(f"\0{hop.username}\0{hop.password}".encode()).decode()
            reply = await self.execute(command("AUTH", "PLAIN", token))
            if reply.code != 235:  # deferred even when permanent, as Postfix's smtp_sasl_auth_soft_bounce:
                raise ConnectFailed(f"AUTH refused: {reply}")  # a password is fixed, the mail should not bounce

    def _check_peer(self, context: ssl.SSLContext) -> bool:
        """Whether the TLS peer is the one we meant: its certificate chain verified (the handshake
        already failed if not), or its certificate is the pinned one (ConnectFailed if it is not)."""
        if self.hop.fingerprint:
            der = self.conn.tls.getpeercert(binary_form=True) if self.conn.tls is not None else None
            seen = hashlib.sha256(der or b"").hexdigest()
            if not hmac.compare_digest(seen, self.hop.fingerprint):
                raise ConnectFailed(f"{self.hop.host}:{self.hop.port}: certificate SHA-256 {seen} is not the "
                                    "pinned one (delivery.smarthost_tls_fingerprint); nothing sent")
            return True
        return context.verify_mode == ssl.CERT_REQUIRED

    async def ehlo(self, helo: str) -> None:
        reply = await self.execute(command("EHLO", helo))
        if reply.code != 250:
            reply = await self.execute(command("HELO", helo))
            if reply.code != 250:
                raise ConnectFailed(f"HELO refused: {reply}", reply)
            self.extensions = {}
        else:
            self.extensions = parse_ehlo(reply)
        name = reply.lines[0].split(maxsplit=1)[0] if reply.lines and reply.lines[0] else ""
        if name.rstrip(".").lower() == helo.rstrip(".").lower():
            # The next hop names itself as we do: a route, MX or smarthost leads back here (a loop, like
            # Postfix's "mail for ... loops back to myself"): the message is returned, not sent round.
            loop = Reply(554, (f"5.4.6 mail for {self.hop.host}:{self.hop.port} loops back to myself ({name})",))
            raise ConnectFailed(str(loop), loop)

    # --- transactions ------------------------------------------------------
    async def send(self, envelope: Envelope, body: AsyncIterator[bytes]) -> TransactionResult:
        try:
            return await self._send(envelope, body)
        except (ConnectionClosed, ConnectionError, TimeoutError, ReplyError, OSError) as exc:
            self.broken = True
            raise SessionLost(str(exc) or type(exc).__name__) from exc

    async def _send(self, envelope: Envelope, body: AsyncIterator[bytes]) -> TransactionResult:
        """Domains go in A-labels, which every server reads (RFC 5890; ours are kept in U-labels). A local
        part in UTF-8 needs SMTPUTF8 (RFC 6531 §3.2): at a hop without it such an address is refused
        here, as the server would have to refuse it, and the others go."""
        utf8 = "SMTPUTF8" in self.extensions
        sender = _wire_address(envelope.sender)
        wire = [_wire_address(r) for r in envelope.recipients]
        sendable = [i for i, r in enumerate(wire) if utf8 or (r.isascii() and sender.isascii())]
        if len(sendable) == len(wire):
            return await self._transact(Envelope(sender, tuple(wire), envelope.mail_params, envelope.rcpt_params),
                                        body)
        if not sendable:  # nothing this hop can take: no transaction at all
            return TransactionResult(NEEDS_SMTPUTF8, tuple(NEEDS_SMTPUTF8 for _ in wire), None)
        params = envelope.rcpt_params
        result = await self._transact(Envelope(sender, tuple(wire[i] for i in sendable), envelope.mail_params,
                                               tuple(params[i] if i < len(params) else () for i in sendable)), body)
        rcpts = [NEEDS_SMTPUTF8] * len(wire)
        for reply, i in zip(result.rcpts, sendable, strict=True):
            rcpts[i] = reply
        return TransactionResult(result.mail, tuple(rcpts), result.data)

    async def _transact(self, envelope: Envelope, body: AsyncIterator[bytes]) -> TransactionResult:
        self.dot_sent = False
        pipelining = "PIPELINING" in self.extensions
        mail_params = [p for p in envelope.mail_params if self._supported(p)]
        lines = [command("MAIL", f"FROM:<{envelope.sender}>", *mail_params)]
        for i, rcpt in enumerate(envelope.recipients):
            params = envelope.rcpt_params[i] if i < len(envelope.rcpt_params) else ()
            lines.append(command("RCPT", f"TO:<{rcpt}>", *[p for p in params if self._supported(p)]))
        lines.append(command("DATA"))
        replies: list[Reply] = []
        if pipelining:  # RFC 2920 §3.1: DATA may end a pipelined group
            self.conn.write(b"".join(lines))
            await self.conn.drain()
            for _ in lines:
                replies.append(await self.read_reply())
        else:
            for line in lines[:-1]:
                replies.append(await self.execute(line))
                if not replies[0].positive:
                    return TransactionResult(replies[0], tuple(replies[0] for _ in envelope.recipients), None)
            if not any(r.positive for r in replies[1:]):
                return TransactionResult(replies[0], tuple(replies[1:]), None)
            replies.append(await self.execute(lines[-1]))
        mail, rcpts, data = replies[0], tuple(replies[1:-1]), replies[-1]
        if data.code != 354:
            return TransactionResult(mail, rcpts, data if any(r.positive for r in rcpts) else None)
        if not mail.positive or not any(r.positive for r in rcpts):
            # The server said go ahead although nothing was accepted: send an empty message and end it.
            self.conn.write(b".\r\n")
            await self.conn.drain()
            await self.read_reply()
            return TransactionResult(mail, rcpts, None)
        encoder = DataEncoder()
        size = 0
        async for chunk in body:
            out = encoder.feed(chunk)
            self.conn.write(out)
            size += len(out)
            if size >= FLUSH:
                await self.conn.drain()
                size = 0
        self.conn.write(encoder.end())
        self.dot_sent = True
        await self.conn.drain()
        return TransactionResult(mail, rcpts, await self.read_reply())

    def _supported(self, param: str) -> bool:
        name = param.partition("=")[0].upper()
        needs = {"SIZE": "SIZE", "BODY": "8BITMIME", "SMTPUTF8": "SMTPUTF8", "RET": "DSN", "ENVID": "DSN",
                 "NOTIFY": "DSN", "ORCPT": "DSN"}.get(name)
        return needs is None or needs in self.extensions

    async def reset(self) -> None:
        try:
            reply = await self.execute(command("RSET"))
        except (ConnectionClosed, ConnectionError, TimeoutError, ReplyError, OSError):
            self.broken = True
            return
        if reply.code != 250:
            self.broken = True

    async def close(self) -> None:
        if self.usable:
            try:
                self.conn.write(command("QUIT"))
                await asyncio.wait_for(self.read_reply(), 2)
            except (ConnectionClosed, ConnectionError, TimeoutError, ReplyError, OSError):
                pass
        self.broken = True
        await self.conn.close()


NEEDS_SMTPUTF8 = Reply(553, ("5.6.7 Address needs SMTPUTF8, which the next hop does not offer",))


def _wire_address(address: str) -> str:
    """``address`` with its domain in A-labels (unchanged: the null path, an address literal, a domain the
    IDNA codec cannot spell)."""
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        return f"{local}@{ascii_domain(domain)}"
    except ValueError:
        return address


class SmtpClient:
    """Opens :class:`SmtpClientSession`s; TLS contexts for opportunistic and verified TLS."""

    def __init__(self, *, connect_timeout: float, command_timeout: float, ca_file: str | None = None) -> None:
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.may_context = ssl.create_default_context()
        self.may_context.check_hostname = False  # RFC 7435: opportunistic TLS does not authenticate
        self.may_context.verify_mode = ssl.CERT_NONE
        self.verify_context = ssl.create_default_context(cafile=ca_file)

    async def connect(self, hop: Hop, helo: str) -> SmtpClientSession:
        loop = asyncio.get_running_loop()
        try:
            _transport, conn = await asyncio.wait_for(
                loop.create_connection(Connection, hop.host, hop.port), self.connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(f"connect to {hop.host}:{hop.port}: {exc or 'timed out'}") from exc
        session = SmtpClientSession(conn, hop, self.command_timeout)
        context = self.context(hop)
        try:
            await session.handshake(helo, context)
        except ConnectFailed:
            await session.close()
            raise
        except ssl.SSLCertVerificationError as exc:
            await session.close()
            why = f"{hop.host}:{hop.port}: certificate not verified ({exc.verify_message})"
            if hop.username:  # "may" with credentials: verify or do not log in (issue 9)
                why += ("; credentials not sent: set delivery.tls_ca_file to the CA that signed it, or pin it "
                        "with delivery.smarthost_tls_fingerprint")
            raise ConnectFailed(why) from exc
        except (ConnectionClosed, ConnectionError, TimeoutError, ReplyError, OSError, ssl.SSLError) as exc:
            await session.close()
            raise ConnectFailed(f"{hop.host}:{hop.port}: {type(exc).__name__} {exc}") from exc
        return session

    def context(self, hop: Hop) -> ssl.SSLContext | None:
        """The TLS context for ``hop``: a pinned certificate is checked after the handshake; credentials
        are sent only to a verified server, so a hop with a username verifies even under "may"."""
        if hop.tls == "none":
            return None
        if hop.fingerprint:
            return self.may_context
        return self.verify_context if hop.tls == "verify" or hop.username else self.may_context
