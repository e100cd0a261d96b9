"""One IMAP session: read → parse (codec.imap) → dispatch → respond (RFC 3501, RFC 9051 §3)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from dizimail.codec import sasl
from dizimail.codec.imap import commands as cmd
from dizimail.codec.imap.commands import State
from dizimail.codec.imap.parser import (
    CommandReady,
    Event,
    IdleDone,
    ImapParser,
    LiteralTooLarge,
    Malformed,
    NeedContinuation,
    SaslResponse,
)
from dizimail.imap.base import CommandError
from dizimail.imap.contexts import Contexts
from dizimail.imap.fetch import FetchRenderer
from dizimail.imap.mailboxes import MailboxCommands
from dizimail.imap.notifications import NotifyCommands
from dizimail.imap.searching import SearchCommands
from dizimail.model.errors import MailError
from dizimail.model.types import Account
from dizimail.net.connection import Connection, ConnectionClosed
from dizimail.services.selected import SelectedMailbox

if TYPE_CHECKING:
    from dizimail.imap.server import ImapContext

log = logging.getLogger("dizimail.imap")

MAX_LINE = 64 * 1024
# Before login only what LOGIN, AUTHENTICATE and ID can need, never a message: a literal of 8 KiB (a
# password), and 40 KiB for a command, room for the largest ID RFC 2971 §3.3 allows (30 fields of
# 30 octets with values of 1024: about 32 KiB; imaptest's id script sends one before login).
PRE_AUTH_MAX_LINE = 40 * 1024
PRE_AUTH_MAX_LITERAL = 8 * 1024
PRE_AUTH_MAX_COMMAND = 40 * 1024
IDLE_TIMEOUT = 30 * 60
AUTH_TIMEOUT = 60.0
CAPABILITIES_BASE = ("IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE", "NAMESPACE", "UIDPLUS",
                     "MOVE", "UNSELECT", "CHILDREN", "SPECIAL-USE", "CREATE-SPECIAL-USE", "CONDSTORE",
                     "QUOTA", "QUOTA=RES-STORAGE", "STATUS=SIZE", "MULTIAPPEND", "ESEARCH", "LIST-EXTENDED",
                     "LIST-STATUS", "SEARCHRES", "QRESYNC", "SORT",
                     "SORT=DISPLAY", "ESORT", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES",
                     "UTF8=ACCEPT", "BINARY", "COMPRESS=DEFLATE", "CATENATE", "CONTEXT=SEARCH", "CONTEXT=SORT",
                     "NOTIFY")


class Bye(Exception):
    pass


class ImapSession(MailboxCommands, SearchCommands, NotifyCommands):
    def __init__(self, ctx: ImapContext, conn: Connection, session_id: str) -> None:
        self.ctx = ctx
        self.conn = conn
        self.sid = session_id
        self.account: Account | None = None
        self.selected: SelectedMailbox | None = None
        self.condstore = False
        self.qresync = False
        self.utf8 = False
        self.rev2 = False
        self.saved: list[int] = []
        self.contexts = Contexts()
        self.notify = None
        self.watch = None
        self.held_flags: set[int] = set()
        self.held_view: SelectedMailbox | None = None
        self.idling = False
        self.bad = 0
        self.held = 0  # literal bytes of the command being read, taken from ctx.literals
        self.parser = self.new_parser()
        self.fetcher = FetchRenderer(self)

    def new_parser(self) -> ImapParser:
        parser = ImapParser(admit=self.admit_literal)
        self.apply_limits(parser)
        return parser

    def apply_limits(self, parser: ImapParser) -> None:
        """Small limits until login (a literal there is a password at most), the configured ones after."""
        if self.account is None:
            parser.max_line, parser.max_literal = PRE_AUTH_MAX_LINE, PRE_AUTH_MAX_LITERAL
            parser.max_command = PRE_AUTH_MAX_COMMAND
        else:
            parser.max_line, parser.max_literal = MAX_LINE, self.ctx.config.limits.max_message_size
            parser.max_command = 2 * parser.max_literal

    def admit_literal(self, size: int) -> bool:
        """Charge a literal to the node's budget before the parser keeps it (released after its command)."""
        if not self.ctx.literals.take(size):
            log.info("imap.literal.refused session=%s ip=%s size=%d held_by_node=%d", self.sid, self.conn.peer_ip,
                     size, self.ctx.literals.in_use)
            return False
        self.held += size
        return True

    def release_literals(self) -> None:
        self.ctx.literals.give(self.held)
        self.held = 0

    @property
    def state(self) -> State:
        if self.account is None:
            return State.NOT_AUTHENTICATED
        return State.SELECTED if self.selected is not None else State.AUTHENTICATED

    def capabilities(self) -> list[str]:
        caps = list(CAPABILITIES_BASE)
        caps.append(f"APPENDLIMIT={self.ctx.config.limits.max_message_size}")
        if self.account is None:
            if self.conn.tls is None and self.ctx.tls is not None:
                caps.append("STARTTLS")
            if self.conn.tls is not None or self.ctx.accounts.plaintext_allowed(self.conn.peer_ip):
                caps += [f"AUTH={m}" for m in sasl.MECHANISMS]
            else:
                caps.append("LOGINDISABLED")
        return caps

    # --- the loop ----------------------------------------------------------------
    async def run(self) -> None:
        self.untagged(f"OK [CAPABILITY {' '.join(self.capabilities())}] dizimail IMAP4rev1 ready")
        try:
            await self.conn.drain()
            while True:
                await self.step()
        except (TimeoutError, Bye, ConnectionClosed, ConnectionError):
            if self.conn.broken is not None:  # RFC 4978 stream that cannot be inflated: a quiet close
                log.info("imap.compress.broken session=%s ip=%s reason=%s", self.sid, self.conn.peer_ip,
                         self.conn.broken)
        finally:
            self.release_literals()
            self.stop_notify()
            try:
                await asyncio.wait_for(self.conn.drain(), 5)
            except (TimeoutError, ConnectionClosed, ConnectionError):
                pass

    async def next_event(self) -> Any:
        timeout = self.ctx.config.limits.command_timeout if self.account else AUTH_TIMEOUT
        while (event := self.parser.next()) is None:
            if not self.conn.has_pending():
                await self.conn.drain()
            data = await self.read_input(timeout)
            self.parser.feed(data)
        return event

    async def step(self) -> None:
        event = await self.next_event()
        try:
            await self.respond(event)
        finally:
            if not isinstance(event, NeedContinuation):  # the command is over: its literals are freed
                self.release_literals()
            self.apply_limits(self.parser)
        if self.bad >= self.ctx.config.limits.max_bad_commands:
            self.untagged("BYE Too many errors")
            raise Bye()

    async def respond(self, event: Event) -> None:
        if isinstance(event, NeedContinuation):
            self.send(b"+ Ready for literal data\r\n")
            await self.conn.drain()
        elif isinstance(event, Malformed):
            self.bad += 1
            self.send(f"{event.tag or '*'} BAD {event.text}\r\n")
        elif isinstance(event, LiteralTooLarge) and event.busy:  # not the client's fault: no error counted
            self.tagged(event.tag, "NO", "Too much data in transit, try again later", "LIMIT")
        elif isinstance(event, LiteralTooLarge):
            self.bad += 1
            self.tagged(event.tag, "NO" if not event.synchronizing else "BAD", "Literal too large", "TOOBIG")
        elif isinstance(event, CommandReady):
            await self.execute(event.command)
        else:
            self.bad += 1
            self.untagged("BAD Unexpected input")

    async def execute(self, command: cmd.Command) -> None:
        tag = command.tag
        handler = HANDLERS.get(type(command))
        state = self.state
        if handler is None:
            self.bad += 1
            self.tagged(tag, "BAD", "Command not supported")
        elif state not in command.states:
            self.tagged(tag, "BAD", _wrong_state(state, command.states))
        else:
            try:
                await handler(self, tag, command)
            except CommandError as exc:
                if exc.kind == "BAD":
                    self.bad += 1
                self.tagged(tag, exc.kind, exc.text, exc.code)
            except MailError as exc:
                self.tagged(tag, "NO", self.ctx_text(exc.public_key), _code_for(exc))

    def ctx_text(self, key: str) -> str:
        from dizimail.i18n import translate

        return translate(key)

    # --- any state -----------------------------------------------------------------
    async def cmd_capability(self, tag: str, c: cmd.Capability) -> None:
        self.untagged("CAPABILITY " + " ".join(self.capabilities()))
        self.tagged(tag, "OK", "CAPABILITY completed")

    async def cmd_noop(self, tag: str, c: cmd.Noop | cmd.Check) -> None:
        await self.sync()
        self.tagged(tag, "OK", f"{type(c).__name__.upper()} completed")

    async def cmd_logout(self, tag: str, c: cmd.Logout) -> None:
        self.untagged("BYE dizimail logging out")
        self.tagged(tag, "OK", "LOGOUT completed")
        raise Bye()

    async def cmd_id(self, tag: str, c: cmd.Id) -> None:
        self.untagged('ID ("name" "dizimail" "vendor" "dizimail")')
        self.tagged(tag, "OK", "ID completed")

    # --- not authenticated -----------------------------------------------------------
    async def cmd_starttls(self, tag: str, c: cmd.StartTls) -> None:
        if self.ctx.tls is None or self.conn.tls is not None:
            raise CommandError("BAD", "TLS not available" if self.ctx.tls is None else "TLS already active")
        self.conn.pause_for_tls()
        self.tagged(tag, "OK", "Begin TLS negotiation now")
        await self.conn.drain()
        try:
            await self.conn.start_tls(self.ctx.tls, 30)
        except Exception as exc:
            raise ConnectionClosed() from exc
        # Nothing the client pipelined in plaintext survives the handshake (RFC 3501 §6.2.1).
        self.parser = self.new_parser()

    def check_secure(self) -> None:
        if self.conn.tls is None and not self.ctx.accounts.plaintext_allowed(self.conn.peer_ip):
            raise CommandError("NO", "Use STARTTLS first", "PRIVACYREQUIRED")

    async def cmd_login(self, tag: str, c: Any) -> None:
        self.check_secure()
        await self.login(tag, c.user, c.password)

    async def cmd_authenticate(self, tag: str, c: Any) -> None:
        mechanism = c.mechanism.upper()
        if mechanism not in sasl.MECHANISMS:
            raise CommandError("NO", "Unsupported mechanism", "CANNOT")
        self.check_secure()
        exchange = sasl.SaslServer(mechanism)
        step = exchange.start(c.initial)
        while isinstance(step, sasl.Challenge):
            self.send(f"+ {step.text}\r\n")
            self.parser.expect_sasl_response()
            event = await self.next_event()
            if isinstance(event, SaslResponse):
                step = exchange.respond(event.line)
            else:  # the parser refused the line (over-long, not ASCII) and has dropped it
                step = exchange.unreadable("malformed", event.text if isinstance(event, Malformed) else "unexpected")
        if isinstance(step, sasl.Failed):  # RFC 9051 §6.2.2: a cancel or bad base64 gets a tagged BAD
            if step.reason != "cancelled":
                log.info("imap.auth.malformed session=%s ip=%s reason=%s", self.sid, self.conn.peer_ip, step.detail)
                self.ctx.accounts.bad_exchange(self.conn.peer_ip)
            raise CommandError("BAD", "Authentication cancelled" if step.reason == "cancelled"
                               else "Malformed SASL response")
        await self.login(tag, step.user, step.password)

    async def login(self, tag: str, user: str, password: str) -> None:
        try:
            self.account = await self.ctx.accounts.authenticate(user, password, self.conn.peer_ip)
        except MailError as exc:
            log.info("imap.auth.failed session=%s ip=%s user=%r", self.sid, self.conn.peer_ip, user)
            if exc.temporary:
                self.untagged("BYE Too many failed logins")
                raise Bye() from exc
            raise CommandError("NO", "Authentication failed", "AUTHENTICATIONFAILED") from exc
        log.info("imap.login session=%s ip=%s user=%s", self.sid, self.conn.peer_ip, self.account.address)
        self.tagged(tag, "OK", "Logged in", "CAPABILITY " + " ".join(self.capabilities()))

    # --- authenticated ------------------------------------------------------------------
    async def cmd_enable(self, tag: str, c: cmd.Enable) -> None:
        enabled = []
        for capability in c.capabilities:
            if capability.upper() == "CONDSTORE" and "CONDSTORE" not in enabled:
                self.condstore = True
                enabled.append("CONDSTORE")
            elif capability.upper() == "QRESYNC" and "QRESYNC" not in enabled:
                self.condstore = self.qresync = True  # RFC 7162 §3.2.3: QRESYNC implies CONDSTORE
                enabled.append("QRESYNC")
            elif capability.upper() == "IMAP4REV2" and "IMAP4rev2" not in enabled:
                self.rev2 = self.utf8 = True  # RFC 9051: UTF-8 names, ESEARCH, no \Recent
                enabled.append("IMAP4rev2")
            elif capability.upper() == "UTF8=ACCEPT" and "UTF8=ACCEPT" not in enabled:
                self.utf8 = True
                enabled.append("UTF8=ACCEPT")
        self.untagged("ENABLED" + "".join(" " + e for e in enabled))
        self.tagged(tag, "OK", "ENABLE completed")

    async def cmd_namespace(self, tag: str, c: cmd.Namespace) -> None:
        self.untagged('NAMESPACE (("" "/")) NIL NIL')
        self.tagged(tag, "OK", "NAMESPACE completed")

    async def cmd_compress(self, tag: str, c: cmd.Compress) -> None:
        """RFC 4978 COMPRESS=DEFLATE: everything after the OK is raw DEFLATE, both ways."""
        if c.mechanism.upper() != "DEFLATE":
            raise CommandError("NO", "Unknown compression mechanism", "CANNOT")
        if self.conn.compressed:
            raise CommandError("NO", "Compression already active", "COMPRESSIONACTIVE")
        self.tagged(tag, "OK", "DEFLATE active")
        self.conn.flush()
        self.conn.unread(self.parser.take_unparsed())  # pipelined behind COMPRESS: compressed already
        self.conn.start_compression()

    async def cmd_idle(self, tag: str, c: cmd.Idle) -> None:
        """RFC 2177: report changes as they happen until DONE."""
        self.send(b"+ idling\r\n")
        if self.notify is not None:
            await self.idle_notifying(tag)
            return
        await self.sync()
        await self.conn.drain()
        self.parser.expect_idle_done()
        box = self.selected.info.id if self.selected else None
        event = self.ctx.notifier.listen(box) if box is not None else None
        deadline = time.monotonic() + IDLE_TIMEOUT
        reader = asyncio.ensure_future(self.next_event())
        changed: asyncio.Future[Any] | None = None
        try:
            while True:
                waiters: list[asyncio.Future[Any]] = [reader]
                changed = asyncio.ensure_future(event.wait()) if event is not None else None
                if changed is not None:
                    waiters.append(changed)
                done, _ = await asyncio.wait(waiters, timeout=min(self.ctx.config.storage.recheck_interval, deadline - time.monotonic()),
                                             return_when=asyncio.FIRST_COMPLETED)
                if changed is not None and not changed.done():
                    changed.cancel()
                if reader in done:
                    break
                if time.monotonic() >= deadline:
                    self.untagged("BYE IDLE timed out")
                    raise Bye()
                if event is not None:
                    event.clear()
                await self.sync()
                await self.conn.drain()
        finally:
            if event is not None and box is not None:
                self.ctx.notifier.unlisten(box, event)
            for task in (reader, changed):
                if task is not None and not task.done():
                    task.cancel()
            if reader.done() and not reader.cancelled() and reader.exception() is not None:
                raise reader.exception()  # type: ignore[misc]  # the connection went away while idling
        if not isinstance(reader.result(), IdleDone):
            raise CommandError("BAD", "Expected DONE")
        await self.sync()
        self.tagged(tag, "OK", "IDLE terminated")

    async def idle_notifying(self, tag: str) -> None:
        """IDLE after NOTIFY SET: exactly the events NOTIFY asked for (RFC 5465 §4)."""
        self.parser.expect_idle_done()
        self.idling = True
        try:
            await self.deliver(recheck=True)
            event = await asyncio.wait_for(self.next_event(), IDLE_TIMEOUT)
        except TimeoutError:
            self.untagged("BYE IDLE timed out")
            raise Bye() from None
        finally:
            self.idling = False
        if not isinstance(event, IdleDone):
            raise CommandError("BAD", "Expected DONE")
        await self.sync()
        self.tagged(tag, "OK", "IDLE terminated")


C = TypeVar("C", bound=cmd.Tagged)
Handler = Callable[[ImapSession, str, Any], Awaitable[None]]


def _entry(kind: type[C], handler: Callable[[ImapSession, str, C], Awaitable[None]]) -> tuple[type[cmd.Tagged], Handler]:
    """One row of the dispatch table; the type checker sees that the handler takes that command."""
    return kind, handler


S = ImapSession
HANDLERS: dict[type[cmd.Tagged], Handler] = dict([
    _entry(cmd.Capability, S.cmd_capability), _entry(cmd.Noop, S.cmd_noop), _entry(cmd.Logout, S.cmd_logout),
    _entry(cmd.StartTls, S.cmd_starttls), _entry(cmd.Login, S.cmd_login), _entry(cmd.Authenticate, S.cmd_authenticate),
    _entry(cmd.Enable, S.cmd_enable), _entry(cmd.Id, S.cmd_id), _entry(cmd.Namespace, S.cmd_namespace),
    _entry(cmd.Select, S.cmd_select), _entry(cmd.Create, S.cmd_create), _entry(cmd.Delete, S.cmd_delete),
    _entry(cmd.Rename, S.cmd_rename), _entry(cmd.Subscribe, S.cmd_subscribe), _entry(cmd.Unsubscribe, S.cmd_unsubscribe),
    _entry(cmd.List, S.cmd_list), _entry(cmd.Lsub, S.cmd_lsub), _entry(cmd.Status, S.cmd_status),
    _entry(cmd.Append, S.cmd_append), _entry(cmd.Check, S.cmd_noop), _entry(cmd.Close, S.cmd_close),
    _entry(cmd.Unselect, S.cmd_unselect), _entry(cmd.Expunge, S.cmd_expunge), _entry(cmd.Search, S.cmd_search),
    _entry(cmd.Fetch, S.cmd_fetch), _entry(cmd.Store, S.cmd_store), _entry(cmd.Copy, S.cmd_copy),
    _entry(cmd.Move, S.cmd_move), _entry(cmd.Idle, S.cmd_idle), _entry(cmd.GetQuota, S.cmd_getquota),
    _entry(cmd.GetQuotaRoot, S.cmd_getquotaroot), _entry(cmd.SetQuota, S.cmd_setquota), _entry(cmd.Sort, S.cmd_sort),
    _entry(cmd.Thread, S.cmd_thread), _entry(cmd.Compress, S.cmd_compress), _entry(cmd.Notify, S.cmd_notify),
    _entry(cmd.CancelUpdate, S.cmd_cancelupdate),
])
"""Command type -> handler, built once (CONVENTIONS: never ``getattr`` on client input)."""


def _wrong_state(state: State, valid: frozenset[State]) -> str:
    """The BAD text for a command given in a state it is not valid in (RFC 9051 §3)."""
    if state is State.NOT_AUTHENTICATED:
        return "Not authenticated"
    if State.NOT_AUTHENTICATED in valid:
        return "Already authenticated"
    return "No mailbox selected"


def _code_for(exc: MailError) -> str:
    return {"quota_exceeded": "OVERQUOTA", "unknown_mailbox": "NONEXISTENT", "mailbox_exists": "ALREADYEXISTS",
            "bad_mailbox_name": "CANNOT", "cannot_delete_inbox": "CANNOT", "bad_flag": "CANNOT"}.get(
        exc.public_key, "UNAVAILABLE" if exc.temporary else "")
