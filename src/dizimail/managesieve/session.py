"""One ManageSieve session (RFC 5804): STARTTLS, AUTHENTICATE through the shared SASL exchange, then the
script commands, each a call to ``services.sieve.scripts`` (the CLI and the web call the same)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from dizimail.codec import sasl
from dizimail.codec.managesieve import CommandReader, SieveProtocolError, Token, string
from dizimail.model.errors import Conflict, MailError, NotFound
from dizimail.model.types import Account
from dizimail.net.connection import Connection, ConnectionClosed, LineTooLong
from dizimail.services.sieve.compile import MAX_SCRIPT, SUPPORTED
from dizimail.services.sieve.interpret import MAX_REDIRECTS
from dizimail.services.sieve.scripts import ScriptQuota, ScriptRefused

if TYPE_CHECKING:
    from dizimail.managesieve.server import SieveContext

log = logging.getLogger("dizimail.managesieve")

LINE_LIMIT = 8192  # a command line (its strings; scripts come as literals)
LITERAL_BEFORE_LOGIN = 4096  # octets of a literal before authentication: a SASL response at most
LITERAL_LIMIT = MAX_SCRIPT + 1024  # a script with room for its name
EXTENSIONS = " ".join(sorted(SUPPORTED))


class CloseSession(Exception):
    pass


class SieveSession:
    def __init__(self, ctx: SieveContext, conn: Connection, session_id: str) -> None:
        self.ctx = ctx
        self.conn = conn
        self.sid = session_id
        self.account: Account | None = None
        self.bad = 0
        self.handlers: dict[str, tuple[int, int, Callable[[list[Token]], Awaitable[None]]]] = {
            # name: (fewest arguments, most arguments, handler)
            "CAPABILITY": (0, 0, self.cmd_capability), "STARTTLS": (0, 0, self.cmd_starttls),
            "AUTHENTICATE": (1, 2, self.cmd_authenticate), "LOGOUT": (0, 0, self.cmd_logout),
            "NOOP": (0, 1, self.cmd_noop), "HAVESPACE": (2, 2, self.cmd_havespace),
            "PUTSCRIPT": (2, 2, self.cmd_putscript), "CHECKSCRIPT": (1, 1, self.cmd_checkscript),
            "LISTSCRIPTS": (0, 0, self.cmd_listscripts), "SETACTIVE": (1, 1, self.cmd_setactive),
            "GETSCRIPT": (1, 1, self.cmd_getscript), "DELETESCRIPT": (1, 1, self.cmd_deletescript),
            "RENAMESCRIPT": (2, 2, self.cmd_renamescript), "UNAUTHENTICATE": (0, 0, self.cmd_unauthenticate),
        }
        self.before_login = {"CAPABILITY", "STARTTLS", "AUTHENTICATE", "LOGOUT", "NOOP"}

    # --- replies ---------------------------------------------------------------------------------------
    def ok(self, text: str = "", code: str = "") -> None:
        self.conn.write(self._reply("OK", text, code))

    def no(self, text: str, code: str = "") -> None:
        self.bad += 1
        self.conn.write(self._reply("NO", text, code))

    @staticmethod
    def _reply(kind: str, text: str, code: str) -> bytes:
        return (kind + (f" ({code})" if code else "") + (f" {string(text)}" if text else "") + "\r\n").encode()

    def capabilities(self) -> None:
        lines = ['"IMPLEMENTATION" "dizimail"', f'"SIEVE" "{EXTENSIONS}"', f'"MAXREDIRECTS" "{MAX_REDIRECTS}"',
                 '"VERSION" "1.0"']
        if self.account is None:
            lines.insert(1, '"SASL" "' + (" ".join(sasl.MECHANISMS) if self.secure() else "") + '"')
            if self.conn.tls is None and self.ctx.tls is not None:
                lines.append('"STARTTLS"')
        else:
            lines.append(f'"OWNER" {string(self.account.address)}')
        self.conn.write(("\r\n".join(lines) + "\r\n").encode())

    def secure(self) -> bool:
        return self.conn.tls is not None or self.ctx.accounts.plaintext_allowed(self.conn.peer_ip)

    # --- the loop --------------------------------------------------------------------------------------
    async def run(self) -> None:
        limits = self.ctx.config.limits
        self.capabilities()
        self.ok("dizimail ManageSieve ready")
        try:
            await self.conn.drain()
            while True:
                tokens = await self.read_command()
                if tokens is not None:
                    await self.dispatch(tokens)
                if self.bad >= limits.max_bad_commands:
                    self.conn.write(b'BYE "Too many errors"\r\n')
                    await self.conn.drain_quietly()
                    return
                if not self.conn.has_pending():
                    await self.conn.drain()
        except CloseSession:
            await self.conn.drain_quietly()
        except (TimeoutError, ConnectionClosed, ConnectionError):
            pass

    async def read_command(self) -> list[Token] | None:
        """The next command's tokens, or None when it was refused (with its reply written)."""
        timeout = self.ctx.config.limits.command_timeout
        reader = CommandReader()
        most = LITERAL_LIMIT if self.account is not None else LITERAL_BEFORE_LOGIN
        fault = ""  # a literal that was read but refused: the rest of the command is read, then refused
        while True:
            try:
                line = await self.conn.read_line(LINE_LIMIT, timeout)
            except LineTooLong:
                self.no("Line too long")
                return None
            try:
                size = reader.feed(line.rstrip(b"\r\n"))
            except SieveProtocolError as exc:
                self.no(f"Syntax error: {fault or exc}")
                return None
            if size is None:
                if fault:
                    self.no(f"Syntax error: {fault}")
                    return None
                return reader.tokens
            if size > most:
                # The octets announced are not read: the client meant them as part of this command, so the
                # connection cannot be kept in step (RFC 5804 §2.6's literal has no continuation request).
                self.conn.write(self._reply("BYE", "Literal too large", "QUOTA/MAXSIZE" if self.account else ""))
                raise CloseSession()
            try:
                reader.literal(await self.conn.read_exactly(size, timeout))
            except SieveProtocolError as exc:
                fault = str(exc)

    async def dispatch(self, tokens: list[Token]) -> None:
        if not tokens or tokens[0].quoted:
            self.no("Command expected")
            return
        name = tokens[0].value.upper()
        entry = self.handlers.get(name)
        if entry is None:
            self.no(f"Unknown command {name[:40]}")
            return
        fewest, most, handler = entry
        args = tokens[1:]
        if not fewest <= len(args) <= most:
            self.no(f"Wrong number of arguments for {name}")
            return
        if self.account is None and name not in self.before_login:
            self.no("Authenticate first")
            return
        if self.account is not None and name in ("AUTHENTICATE", "STARTTLS"):
            self.no("Already authenticated")
            return
        await handler(args)

    # --- before login ----------------------------------------------------------------------------------
    async def cmd_capability(self, args: list[Token]) -> None:
        self.capabilities()
        self.ok()

    async def cmd_noop(self, args: list[Token]) -> None:
        if args:
            self.ok("Done", "TAG " + string(args[0].value))
        else:
            self.ok("Done")

    async def cmd_logout(self, args: list[Token]) -> None:
        self.ok("Logout")
        raise CloseSession()

    async def cmd_starttls(self, args: list[Token]) -> None:
        if self.ctx.tls is None or self.conn.tls is not None:
            self.no("TLS not available" if self.ctx.tls is None else "TLS already active")
            return
        await self.conn.upgrade(self._reply("OK", "Begin TLS negotiation", ""), self.ctx.tls, lambda exc: log.info(
            "managesieve.tls.failed session=%s ip=%s error=%r", self.sid, self.conn.peer_ip, exc))
        self.capabilities()  # RFC 5804 §2.2: the capabilities again, over TLS
        self.ok("TLS active")

    async def cmd_authenticate(self, args: list[Token]) -> None:
        mechanism = args[0].value.upper()
        if not self.secure():
            self.no("Authentication requires TLS; use STARTTLS", "ENCRYPT-NEEDED")
            return
        if mechanism not in sasl.MECHANISMS:
            self.no("Unsupported authentication mechanism")
            return
        exchange = sasl.SaslServer(mechanism)
        initial = args[1].value if len(args) > 1 else None
        step = exchange.start(None if initial is None else initial or "=")
        while isinstance(step, sasl.Challenge):
            step = await self.challenge(exchange, step.text)
        if isinstance(step, sasl.Failed):
            if step.reason != "cancelled":
                log.info("managesieve.auth.malformed session=%s ip=%s reason=%s", self.sid, self.conn.peer_ip,
                         step.detail)
                self.ctx.accounts.bad_exchange(self.conn.peer_ip)
            self.no("Authentication cancelled" if step.reason == "cancelled" else "Malformed SASL response")
            return
        try:
            account = await self.ctx.accounts.authenticate(step.user, step.password, self.conn.peer_ip)
        except MailError as exc:
            log.info("managesieve.auth.failed session=%s ip=%s user=%r", self.sid, self.conn.peer_ip, step.user)
            if exc.temporary:
                self.conn.write(self._reply("BYE", self.ctx.text(exc.public_key), "TRYLATER"))
                raise CloseSession() from exc
            self.no(self.ctx.text(exc.public_key))
            return
        self.account = account
        self.bad = 0
        log.info("managesieve.login session=%s ip=%s user=%s", self.sid, self.conn.peer_ip, account.address)
        self.ok("Logged in")

    async def challenge(self, exchange: sasl.SaslServer, text: str) -> sasl.Step:
        """A challenge is a string; the answer a string, "*" to give up (RFC 5804 §2.1)."""
        self.conn.write((string(text) + "\r\n").encode())
        await self.conn.drain()
        timeout = self.ctx.config.limits.command_timeout
        reader = CommandReader()
        try:
            line = await self.conn.read_line(LINE_LIMIT, timeout)
            size = reader.feed(line.rstrip(b"\r\n"))
            if size is not None:
                if size > LITERAL_BEFORE_LOGIN:
                    return exchange.too_long()
                data = await self.conn.read_exactly(size, timeout)
                rest = await self.conn.read_line(LINE_LIMIT, timeout)
                reader.literal(data)
                if reader.feed(rest.rstrip(b"\r\n")) is not None:
                    return exchange.unreadable("malformed", "a second literal")
        except LineTooLong:
            return exchange.too_long()
        except SieveProtocolError as exc:
            return exchange.unreadable("malformed", str(exc))
        if len(reader.tokens) != 1 or not reader.tokens[0].quoted:
            return exchange.unreadable("malformed", "one string was expected")
        return exchange.respond(reader.tokens[0].value or "=")

    # --- scripts -----------------------------------------------------------------------------------------
    @property
    def me(self) -> int:
        assert self.account is not None
        return self.account.id

    async def _do(self, action: Awaitable[None], done: str = "") -> None:
        """Run a script operation and reply; the service's refusals become RFC 5804 §1.3's codes."""
        try:
            await action
        except ScriptRefused as exc:
            self.no(str(exc.error))
            return
        except ScriptQuota as exc:
            self.no(exc.detail, exc.which)
            return
        except NotFound as exc:
            self.no(f"No such script: {exc.detail}"[:200], "NONEXISTENT")
            return
        except Conflict as exc:
            code = "ACTIVE" if exc.public_key == "sieve_active" else "ALREADYEXISTS"
            self.no("The active script cannot be deleted" if code == "ACTIVE" else "A script has that name", code)
            return
        except MailError as exc:
            self.no(exc.detail or self.ctx.text(exc.public_key))
            return
        self.ok(done)

    def _string(self, token: Token, what: str) -> str | None:
        if not token.quoted:
            self.no(f"{what} must be a string")
            return None
        return token.value

    async def cmd_havespace(self, args: list[Token]) -> None:
        name = self._string(args[0], "The name")
        if name is None:
            return
        if args[1].quoted or not args[1].value.isdigit():
            self.no("The size must be a number")
            return
        await self._do(self.ctx.scripts.room(self.me, name, int(args[1].value)))

    async def cmd_putscript(self, args: list[Token]) -> None:
        name, text = self._string(args[0], "The name"), self._string(args[1], "The script")
        if name is None or text is None:
            return

        async def put() -> None:
            await self.ctx.scripts.put(self.me, name, text)
        await self._do(put())

    async def cmd_checkscript(self, args: list[Token]) -> None:
        text = self._string(args[0], "The script")
        if text is None:
            return

        async def check() -> None:
            await self.ctx.scripts.verify(text)
        await self._do(check())

    async def cmd_listscripts(self, args: list[Token]) -> None:
        scripts = await self.ctx.scripts.list(self.me)
        self.conn.write("".join(string(s.name) + (" ACTIVE" if s.active else "") + "\r\n" for s in scripts).encode())
        self.ok()

    async def cmd_setactive(self, args: list[Token]) -> None:
        name = self._string(args[0], "The name")
        if name is not None:
            await self._do(self.ctx.scripts.activate(self.me, name or None))

    async def cmd_getscript(self, args: list[Token]) -> None:
        name = self._string(args[0], "The name")
        if name is None:
            return
        try:
            text = await self.ctx.scripts.get(self.me, name)
        except NotFound:
            self.no("No such script", "NONEXISTENT")
            return
        except MailError as exc:
            self.no(exc.detail or self.ctx.text(exc.public_key))
            return
        data = text.encode()
        self.conn.write(b"{%d}\r\n" % len(data) + data + b"\r\n")
        self.ok()

    async def cmd_deletescript(self, args: list[Token]) -> None:
        name = self._string(args[0], "The name")
        if name is not None:
            await self._do(self.ctx.scripts.delete(self.me, name))

    async def cmd_renamescript(self, args: list[Token]) -> None:
        old, new = self._string(args[0], "The name"), self._string(args[1], "The new name")
        if old is not None and new is not None:
            await self._do(self.ctx.scripts.rename(self.me, old, new))

    async def cmd_unauthenticate(self, args: list[Token]) -> None:
        self.account = None  # RFC 5804 §2.14.1
        self.ok()
