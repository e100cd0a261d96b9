"""One IMAP session: read → parse (codec.imap) → dispatch → respond (RFC 3501, RFC 9051 §3)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from dizimail.codec import sasl
from dizimail.codec.imap import commands as cmd
from dizimail.codec.imap.parser import (
    CommandReady,
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
        limit = ctx.config.limits.max_message_size
        self.parser = ImapParser(max_line=MAX_LINE, max_literal=limit)
        self.fetcher = FetchRenderer(self)
        self.handlers: dict[type, Callable[[str, Any], Awaitable[None]]] = {
            cmd.Capability: self.cmd_capability, cmd.Noop: self.cmd_noop, cmd.Logout: self.cmd_logout,
            cmd.StartTls: self.cmd_starttls, cmd.Login: self.cmd_login, cmd.Authenticate: self.cmd_authenticate,
            cmd.Enable: self.cmd_enable, cmd.Id: self.cmd_id, cmd.Namespace: self.cmd_namespace,
            cmd.Select: self.cmd_select, cmd.Create: self.cmd_create, cmd.Delete: self.cmd_delete,
            cmd.Rename: self.cmd_rename, cmd.Subscribe: self.cmd_subscribe, cmd.Unsubscribe: self.cmd_unsubscribe,
            cmd.List: self.cmd_list, cmd.Lsub: self.cmd_lsub, cmd.Status: self.cmd_status,
            cmd.Append: self.cmd_append, cmd.Check: self.cmd_noop, cmd.Close: self.cmd_close,
            cmd.Unselect: self.cmd_unselect, cmd.Expunge: self.cmd_expunge, cmd.Search: self.cmd_search,
            cmd.Fetch: self.cmd_fetch, cmd.Store: self.cmd_store, cmd.Copy: self.cmd_copy, cmd.Move: self.cmd_move,
            cmd.Idle: self.cmd_idle, cmd.GetQuota: self.cmd_getquota, cmd.GetQuotaRoot: self.cmd_getquotaroot,
            cmd.SetQuota: self.cmd_setquota, cmd.Sort: self.cmd_sort, cmd.Thread: self.cmd_thread,
            cmd.Compress: self.cmd_compress, cmd.Notify: self.cmd_notify, cmd.CancelUpdate: self.cmd_cancelupdate,
        }
        self.needs_auth = {cmd.Enable, cmd.Namespace, cmd.Select, cmd.Create, cmd.Delete, cmd.Rename, cmd.Subscribe,
                           cmd.Unsubscribe, cmd.List, cmd.Lsub, cmd.Status, cmd.Append, cmd.Idle, cmd.GetQuota,
                           cmd.GetQuotaRoot, cmd.SetQuota, cmd.Notify}
        self.needs_selected = {cmd.Close, cmd.Unselect, cmd.Expunge, cmd.Search, cmd.Fetch, cmd.Store, cmd.Copy,
                               cmd.Move, cmd.Sort, cmd.Thread, cmd.CancelUpdate}
        self.not_authenticated_only = {cmd.Login, cmd.Authenticate, cmd.StartTls}

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
            pass
        finally:
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
        if isinstance(event, NeedContinuation):
            self.send(b"+ Ready for literal data\r\n")
            await self.conn.drain()
        elif isinstance(event, Malformed):
            self.bad += 1
            self.send(f"{event.tag or '*'} BAD {event.text}\r\n")
        elif isinstance(event, LiteralTooLarge):
            self.bad += 1
            self.tagged(event.tag, "NO" if not event.synchronizing else "BAD", "Literal too large", "TOOBIG")
        elif isinstance(event, CommandReady):
            await self.execute(event.command)
        else:
            self.bad += 1
            self.untagged("BAD Unexpected input")
        if self.bad >= self.ctx.config.limits.max_bad_commands:
            self.untagged("BYE Too many errors")
            raise Bye()

    async def execute(self, command: Any) -> None:
        tag = command.tag
        kind = type(command)
        handler = self.handlers.get(kind)
        if handler is None:
            self.bad += 1
            self.tagged(tag, "BAD", "Command not supported")
        elif kind in self.not_authenticated_only and self.account is not None:
            self.tagged(tag, "BAD", "Already authenticated")
        elif kind in self.needs_auth and self.account is None:
            self.tagged(tag, "BAD", "Not authenticated")
        elif kind in self.needs_selected and self.selected is None:
            self.tagged(tag, "BAD", "No mailbox selected")
        else:
            try:
                await handler(tag, command)
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
    async def cmd_capability(self, tag: str, c: Any) -> None:
        self.untagged("CAPABILITY " + " ".join(self.capabilities()))
        self.tagged(tag, "OK", "CAPABILITY completed")

    async def cmd_noop(self, tag: str, c: Any) -> None:
        await self.sync()
        self.tagged(tag, "OK", f"{type(c).__name__.upper()} completed")

    async def cmd_logout(self, tag: str, c: Any) -> None:
        self.untagged("BYE dizimail logging out")
        self.tagged(tag, "OK", "LOGOUT completed")
        raise Bye()

    async def cmd_id(self, tag: str, c: Any) -> None:
        self.untagged('ID ("name" "dizimail" "vendor" "dizimail")')
        self.tagged(tag, "OK", "ID completed")

    # --- not authenticated -----------------------------------------------------------
    async def cmd_starttls(self, tag: str, c: Any) -> None:
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
        self.parser = ImapParser(max_line=MAX_LINE, max_literal=self.ctx.config.limits.max_message_size)

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
    async def cmd_enable(self, tag: str, c: Any) -> None:
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

    async def cmd_namespace(self, tag: str, c: Any) -> None:
        self.untagged('NAMESPACE (("" "/")) NIL NIL')
        self.tagged(tag, "OK", "NAMESPACE completed")

    async def cmd_compress(self, tag: str, c: Any) -> None:
        """RFC 4978 COMPRESS=DEFLATE: everything after the OK is raw DEFLATE, both ways."""
        if c.mechanism.upper() != "DEFLATE":
            raise CommandError("NO", "Unknown compression mechanism", "CANNOT")
        if self.conn.compressed:
            raise CommandError("NO", "Compression already active", "COMPRESSIONACTIVE")
        self.tagged(tag, "OK", "DEFLATE active")
        self.conn.flush()
        self.conn.start_compression()

    async def cmd_idle(self, tag: str, c: Any) -> None:
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


def _code_for(exc: MailError) -> str:
    return {"quota_exceeded": "OVERQUOTA", "unknown_mailbox": "NONEXISTENT", "mailbox_exists": "ALREADYEXISTS",
            "bad_mailbox_name": "CANNOT", "cannot_delete_inbox": "CANNOT", "bad_flag": "CANNOT"}.get(
        exc.public_key, "UNAVAILABLE" if exc.temporary else "")
