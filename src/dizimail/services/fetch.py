"""The fetcher: pull mail from POP3/IMAP mailboxes into ours, on a timer and when a user logs in.

Two uses of one mechanism (DESIGN.md §1, the seed's POLL mode):

* ``envelope`` mode — the inner server polls the gateway's holding mailbox. The gateway wrote each
  copy with ``Return-Path`` and ``Delivered-To`` first (one copy per recipient); those give the envelope,
  and the message is routed like SMTP mail.
* ``account`` mode — a user's external mailbox, delivered into that user's INBOX.

Never a loss, never a duplicate: a message is removed from the remote side only after our commit, and
the commit records its remote UID (POP3 UIDL, or IMAP UIDVALIDITY.UID) in the same transaction, so a
crash between the two leads to a delete at the next run, not to a second copy.
"""

from __future__ import annotations

import asyncio
import builtins
import ipaddress
import logging
import re
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from dizimail.config.schema import FetchConfig
from dizimail.i18n import translate
from dizimail.interfaces import FetchStore
from dizimail.interfaces.remote import FetchFailed, MailboxClient
from dizimail.model.errors import InvalidInput, MailError, NotFound, TemporaryFailure
from dizimail.model.outbound import FetchAccount
from dizimail.model.types import Account
from dizimail.services.policy.facts import Mode
from dizimail.services.policy.verdict import Action, Refused, Verdict
from dizimail.services.queue.dsn import RecipientStatus, build_dsn
from dizimail.services.resolver import split_hostport
from dizimail.services.secretbox import SecretBox
from dizimail.services.submit import Submitter

MAX_OWN = 5  # external mailboxes one user may have fetched
MIN_OWN_INTERVAL = 300.0  # seconds between fetches of a user's own external mailbox, at least

log = logging.getLogger("dizimail.fetch")
# The blank run is taken whole ((?![ \t])): [ \t]* and [^>\r\n]* overlap, so a long run of blanks before a
# failing end was split in every way (quadratic: 64 KiB took 98 s). The results are the same.
_TRACE = re.compile(rb"(Return-Path|Delivered-To):[ \t]*(?![ \t])<?([^>\r\n]*)>?\r?\n", re.IGNORECASE)
_MIN_GAP = 5.0  # seconds between two on-demand runs of one account
_KICK_LIST_TTL = 1.0  # seconds a login reuses the list of fetch accounts another login read


def split_envelope(raw: bytes) -> tuple[str, str | None, bytes]:
    """(sender, recipient, message) from a copy the gateway held: its leading trace lines, then the rest."""
    sender, rcpt, pos = "", None, 0
    for _ in range(2):
        m = _TRACE.match(raw, pos)
        if m is None:
            break
        value = m.group(2).decode("utf-8", "replace").strip()
        if m.group(1).lower() == b"return-path":
            sender = value
        else:
            rcpt = value
        pos = m.end()
    return sender, rcpt, raw[pos:]


class _TooBig(Exception):
    def __init__(self, detail: str, count: int) -> None:
        super().__init__(detail)
        self.count = count


def default_port(protocol: str, security: str) -> int:
    """The port a fetch account uses unless told: POP3S 995, IMAPS 993, IMAP 143, POP3 110."""
    return {("pop3", "tls"): 995, ("imap", "tls"): 993, ("imap", "starttls"): 143, ("imap", "none"): 143}.get(
        (protocol, security), 110)


def fetch_account(server: str, username: str, password: str, *, protocol: str = "pop3", security: str = "tls",
                  into: str | None = None, interval: float = 120.0, keep: bool = False,
                  verify: bool = True) -> FetchAccount:
    """A new fetch account from what an operator gives (``server``: HOST[:PORT]); ``into`` a local user's
    INBOX, or None for poll mode (each message routed by the envelope the gateway recorded)."""
    try:
        host, port = split_hostport(server.strip(), default_port(protocol, security))
    except ValueError:
        raise InvalidInput("bad_server", server) from None
    return FetchAccount(0, into or None, "account" if into else "envelope", protocol, host, port, security, verify,
                        username, password, interval, keep)


async def outside_address(host: str, port: int) -> str:
    """The address to connect to for ``host``: InvalidInput unless every address it resolves to is a public one
    (not this machine, not a private, shared, reserved or multicast network)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise InvalidInput("bad_server", host) from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global or address.is_multicast:
            raise InvalidInput("fetch_inner_host", f"{host} is {address}")
    if not infos:
        raise InvalidInput("bad_server", host)
    return str(infos[0][4][0])


class FetchService:
    def __init__(self, store: FetchStore, submitter: Submitter, config: FetchConfig,
                 postmaster: Callable[[], Awaitable[str]], max_size: int, box: SecretBox,
                 client: MailboxClient) -> None:
        self.store = store
        self.client = client  # the wire (clients.fetch): this service opens no socket
        self.box = box  # passwords are stored sealed (services.secretbox), opened only to log in
        self.submitter = submitter
        self.config = config
        self.postmaster = postmaster
        self.max_size = max_size  # limits.max_message_size: what SMTP would refuse, the fetcher leaves alone
        self._running: dict[int, asyncio.Task[int]] = {}
        self._last_kick: dict[int, float] = {}
        self._kick_list: tuple[float, list[FetchAccount]] = (-1e9, [])

    # --- operator actions -------------------------------------------------------
    async def add(self, acc: FetchAccount) -> int:
        if acc.mode not in ("envelope", "account") or acc.protocol not in ("pop3", "imap") or \
                acc.security not in ("none", "starttls", "tls") or not 0 < acc.port < 65536:
            raise InvalidInput("bad_setting", f"{acc.mode}/{acc.protocol}/{acc.security}/{acc.port}")
        if acc.mode == "account" and not acc.account:
            raise InvalidInput("bad_setting", "an account-mode fetch needs the local user it delivers to")
        return await self.store.add_fetch_account(replace(acc, password=self.box.seal(acc.password)))

    # --- a user's own external mailboxes (webmail's settings) ----------------------------------------
    async def own(self, address: str) -> builtins.list[FetchAccount]:
        return [a for a in await self.store.list_fetch_accounts() if a.mode == "account" and a.account == address]

    async def add_own(self, address: str, acc: FetchAccount) -> int:
        """A user's external mailbox, fetched into their INBOX. Its host must be on the internet (not this
        machine, not a private or reserved network: a user must not make the server knock on inner doors)
        unless ``fetch.user_private_hosts``; at most MAX_OWN per user, every MIN_OWN_INTERVAL at most."""
        if len(await self.own(address)) >= MAX_OWN:
            raise InvalidInput("too_many_fetch_accounts", f"at most {MAX_OWN}")
        if not self.config.user_private_hosts:
            await outside_address(acc.host, acc.port)
        return await self.add(replace(acc, account=address, mode="account", interval=max(acc.interval, MIN_OWN_INTERVAL),
                                      outside_only=not self.config.user_private_hosts))

    async def remove_own(self, address: str, fetch_id: int) -> None:
        if fetch_id not in {a.id for a in await self.own(address)}:
            raise NotFound("unknown_fetch_account", str(fetch_id))
        await self.store.remove_fetch_account(fetch_id)

    async def seal_stored(self) -> int:
        """Encrypt the passwords stored in plaintext by an older version (called at the node's start)."""
        plain = [a for a in await self.store.list_fetch_accounts() if not self.box.sealed(a.password)]
        for acc in plain:
            await self.store.set_fetch_password(acc.id, self.box.seal(acc.password))
        return len(plain)

    async def list(self) -> list[FetchAccount]:
        return await self.store.list_fetch_accounts()

    async def remove(self, fetch_id: int) -> None:
        await self.store.remove_fetch_account(fetch_id)

    # --- running ------------------------------------------------------------------
    async def run_due(self, now: float | None = None) -> int:
        """Run every account whose interval has passed; returns how many messages came in."""
        now = time.time() if now is None else now
        due = [a for a in await self.store.list_fetch_accounts() if a.last_run + a.interval <= now]
        counts = await asyncio.gather(*(self.run_one(a) for a in due))
        return sum(counts)

    async def run_all(self) -> int:
        counts = await asyncio.gather(*(self.run_one(a) for a in await self.store.list_fetch_accounts()))
        return sum(counts)

    def on_login(self, account: Account) -> None:
        """A user logged in: fetch their external accounts, and the gateway holding box, now (in the background)."""
        if not self.config.on_login:
            return
        asyncio.get_running_loop().create_task(self._kick(account.address))

    async def _kick(self, address: str) -> None:
        now = time.monotonic()
        if now - self._kick_list[0] > _KICK_LIST_TTL:  # logins come by the hundred a second
            self._kick_list = (now, await self.store.list_fetch_accounts())
        for acc in self._kick_list[1]:
            if (acc.mode == "envelope" or acc.account == address) and now - self._last_kick.get(acc.id, -1e9) > _MIN_GAP:
                self._last_kick[acc.id] = now
                await self.run_one(acc)

    async def run_one(self, acc: FetchAccount) -> int:
        """One pass over one account; concurrent calls for the same account share the pass."""
        task = self._running.get(acc.id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._run(acc))
            self._running[acc.id] = task
            task.add_done_callback(lambda _t: self._running.pop(acc.id, None))
        return await asyncio.shield(task)

    async def _run(self, acc: FetchAccount) -> int:
        error, count = "", 0
        try:
            count = await self._pass(acc)
        except _TooBig as exc:
            error, count = str(exc), exc.count
            log.warning("fetch.too_big id=%d host=%s user=%s %s", acc.id, acc.host, acc.username, error)
        except (FetchFailed, MailError) as exc:
            error = f"{type(exc).__name__}: {getattr(exc, 'detail', '') or exc}"
            log.warning("fetch.failed id=%d host=%s user=%s error=%s", acc.id, acc.host, acc.username, error)
        await self.store.fetch_ran(acc.id, time.time(), error)
        if count:
            log.info("fetch.done id=%d host=%s user=%s messages=%d", acc.id, acc.host, acc.username, count)
        return count

    async def _pass(self, acc: FetchAccount) -> int:
        seen = await self.store.fetch_seen(acc.id)
        # a user's own account: its host checked again now, and the connection made to the checked address
        pinned = await outside_address(acc.host, acc.port) if acc.outside_only else None
        session = await self.client.open(replace(acc, password=self.box.open(acc.password)), self.config.timeout,
                                         pinned)
        count = 0
        too_big: list[str] = []
        try:
            listing = await session.listing()
            gone = seen - listing.keys()
            if gone:  # deleted on the remote side: forget them, UIDs are not reused within a UIDVALIDITY
                await self.store.forget_fetched(acc.id, gone)
            for uid, ref in listing.items():
                if uid not in seen:
                    if count >= self.config.max_messages:
                        break
                    if await session.size(ref) > self.max_size:
                        too_big.append(uid)  # stays on the server, reported on the account
                        continue
                    data = await session.retrieve(ref)
                    await self._deliver(acc, uid, data)
                    count += 1
                if not acc.keep:
                    await session.delete(ref)  # only after our commit (or an earlier one)
        finally:
            await session.close()
        if too_big:
            raise _TooBig(f"{len(too_big)} message(s) larger than {self.max_size} octets left on the server "
                          f"(UID {', '.join(too_big[:5])})", count)
        return count

    async def _deliver(self, acc: FetchAccount, uid: str, raw: bytes) -> None:
        mark = (acc.id, uid)
        sender, rcpt, data = split_envelope(raw)
        recipients = ([rcpt] if rcpt else []) if acc.mode == "envelope" else [acc.account or ""]
        mode = Mode.POLL if acc.mode == "envelope" else Mode.FETCH  # our gateway's holding box, or the internet's
        try:
            if not recipients:
                raise NotFound("unknown_user", "no Delivered-To line in a held message")
            await self.submitter.submit(sender, recipients, data, protocol="fetch", fetched=mark, mode=mode)
        except Refused as exc:
            if exc.verdict.action is Action.TEMPFAIL:  # e.g. the virus scanner is down: it stays there for now
                raise TemporaryFailure(f"{exc.verdict.check}: {exc.verdict.reason}") from exc
            # The policy refuses the message itself (a mail loop, too many hops, too big): the sender is
            # told, as an SMTP client would have been, and the copy is taken off the remote side.
            log.warning("fetch.refused id=%d uid=%s check=%s reason=%s; bounced to <%s>", acc.id, uid,
                        exc.verdict.check, exc.verdict.reason, sender)
            await self.submitter.submit("", [sender or await self.postmaster()],
                                        self._bounce(acc, uid, sender, recipients, data, exc.verdict),
                                        protocol="dsn", fetched=mark)
        except NotFound as exc:
            # Nobody here by that name: a human looks at it (CONVENTIONS habit 9), it is not dropped.
            log.warning("fetch.unroutable id=%d uid=%s rcpt=%s detail=%s; delivered to %s", acc.id, uid,
                        recipients, exc.detail, self.postmaster)
            await self.submitter.submit(sender, [await self.postmaster()], data, protocol="fetch", fetched=mark,
                                        mode=mode)

    def _bounce(self, acc: FetchAccount, uid: str, sender: str, recipients: Sequence[str], data: bytes,
                verdict: Verdict) -> bytes:
        hostname = self.submitter.ingest.hostname
        text = translate(verdict.key, "en").format_map(dict(verdict.args))
        statuses = [RecipientStatus(r, None, "failed", verdict.enhanced or "5.0.0", f"{verdict.code} {text}")
                    for r in recipients]
        now = time.time()
        return build_dsn(reporting_mta=hostname, sender=sender, queue_id=f"fetch{acc.id}.{uid}", arrival=now,
                         statuses=statuses, original=data, now=now)
