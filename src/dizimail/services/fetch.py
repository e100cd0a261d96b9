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
import imaplib
import logging
import poplib
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from dizimail.config.schema import FetchConfig
from dizimail.i18n import translate
from dizimail.interfaces import RoutingStore
from dizimail.model.errors import InvalidInput, MailError, NotFound
from dizimail.model.outbound import FetchAccount
from dizimail.model.types import Account
from dizimail.services.policy.verdict import Refused, Verdict
from dizimail.services.queue.dsn import RecipientStatus, build_dsn
from dizimail.services.secretbox import SecretBox
from dizimail.services.submit import Submitter

log = logging.getLogger("dizimail.fetch")
_TRACE = re.compile(rb"(Return-Path|Delivered-To):[ \t]*<?([^>\r\n]*)>?\r?\n", re.IGNORECASE)
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
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


class _Pop3:
    def __init__(self, acc: FetchAccount, timeout: float, context: ssl.SSLContext) -> None:
        if acc.security == "tls":
            self.client: poplib.POP3 = poplib.POP3_SSL(acc.host, acc.port, timeout=timeout, context=context)
        else:
            self.client = poplib.POP3(acc.host, acc.port, timeout=timeout)
            if acc.security == "starttls":
                self.client.stls(context)
        self.client.user(acc.username)
        self.client.pass_(acc.password)

    def listing(self) -> dict[str, str]:
        """uid → message number."""
        _resp, lines, _octets = self.client.uidl()
        out = {}
        for line in lines:
            number, _, uid = line.decode("utf-8", "replace").partition(" ")
            out[uid.strip()] = number
        return out

    def size(self, ref: str) -> int:
        response: bytes = self.client.list(int(ref))  # type: ignore[assignment]  # "+OK n size" when given n
        return int(response.split()[2])

    def retrieve(self, ref: str) -> bytes:
        _resp, lines, _octets = self.client.retr(int(ref))
        return b"\r\n".join(lines) + b"\r\n"

    def delete(self, ref: str) -> None:
        self.client.dele(int(ref))

    def close(self) -> None:
        self.client.quit()  # POP3 deletes take effect at QUIT (RFC 1939 UPDATE state)


class _Imap:
    def __init__(self, acc: FetchAccount, timeout: float, context: ssl.SSLContext) -> None:
        if acc.security == "tls":
            self.client: imaplib.IMAP4 = imaplib.IMAP4_SSL(acc.host, acc.port, ssl_context=context, timeout=timeout)
        else:
            self.client = imaplib.IMAP4(acc.host, acc.port, timeout=timeout)
            if acc.security == "starttls":
                self.client.starttls(context)
        self.client.login(acc.username, acc.password)
        typ, data = self.client.select("INBOX")
        if typ != "OK":
            raise OSError(f"SELECT INBOX failed: {data!r}")
        validity = _UIDVALIDITY.search(b" ".join(x for x in self.client.untagged_responses.get("OK", [])
                                                 if isinstance(x, bytes)))
        self.validity = validity.group(1).decode() if validity else "0"
        self.deleted = False

    def listing(self) -> dict[str, str]:
        typ, data = self.client.uid("SEARCH", "ALL")
        if typ != "OK":
            raise OSError(f"UID SEARCH failed: {data!r}")
        return {f"{self.validity}.{u.decode()}": u.decode() for u in (data[0] or b"").split()}

    def size(self, ref: str) -> int:
        typ, data = self.client.uid("FETCH", ref, "(RFC822.SIZE)")
        m = _SIZE.search(data[0] if data and isinstance(data[0], bytes) else b"")
        if typ != "OK" or m is None:
            raise OSError(f"UID FETCH {ref} (RFC822.SIZE) failed: {data!r}")
        return int(m.group(1))

    def retrieve(self, ref: str) -> bytes:
        typ, data = self.client.uid("FETCH", ref, "(BODY.PEEK[])")
        for part in data:
            if isinstance(part, tuple):
                return bytes(part[1])
        raise OSError(f"UID FETCH {ref} returned no body ({typ})")

    def delete(self, ref: str) -> None:
        self.client.uid("STORE", ref, "+FLAGS.SILENT", r"(\Deleted)")
        self.deleted = True

    def close(self) -> None:
        if self.deleted:
            self.client.expunge()
        self.client.logout()


class FetchService:
    def __init__(self, routing: RoutingStore, submitter: Submitter, config: FetchConfig,
                 postmaster: Callable[[], Awaitable[str]], max_size: int, box: SecretBox) -> None:
        self.routing = routing
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
        return await self.routing.add_fetch_account(replace(acc, password=self.box.seal(acc.password)))

    async def seal_stored(self) -> int:
        """Encrypt the passwords stored in plaintext by an older version (called at the node's start)."""
        plain = [a for a in await self.routing.list_fetch_accounts() if not self.box.sealed(a.password)]
        for acc in plain:
            await self.routing.set_fetch_password(acc.id, self.box.seal(acc.password))
        return len(plain)

    async def list(self) -> list[FetchAccount]:
        return await self.routing.list_fetch_accounts()

    async def remove(self, fetch_id: int) -> None:
        await self.routing.remove_fetch_account(fetch_id)

    # --- running ------------------------------------------------------------------
    async def run_due(self, now: float | None = None) -> int:
        """Run every account whose interval has passed; returns how many messages came in."""
        now = time.time() if now is None else now
        due = [a for a in await self.routing.list_fetch_accounts() if a.last_run + a.interval <= now]
        counts = await asyncio.gather(*(self.run_one(a) for a in due))
        return sum(counts)

    async def run_all(self) -> int:
        counts = await asyncio.gather(*(self.run_one(a) for a in await self.routing.list_fetch_accounts()))
        return sum(counts)

    def on_login(self, account: Account) -> None:
        """A user logged in: fetch their external accounts, and the gateway holding box, now (in the background)."""
        if not self.config.on_login:
            return
        asyncio.get_running_loop().create_task(self._kick(account.address))

    async def _kick(self, address: str) -> None:
        now = time.monotonic()
        if now - self._kick_list[0] > _KICK_LIST_TTL:  # logins come by the hundred a second
            self._kick_list = (now, await self.routing.list_fetch_accounts())
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
        except (OSError, poplib.error_proto, imaplib.IMAP4.error, ssl.SSLError, EOFError, MailError) as exc:
            error = f"{type(exc).__name__}: {getattr(exc, 'detail', '') or exc}"
            log.warning("fetch.failed id=%d host=%s user=%s error=%s", acc.id, acc.host, acc.username, error)
        await self.routing.fetch_ran(acc.id, time.time(), error)
        if count:
            log.info("fetch.done id=%d host=%s user=%s messages=%d", acc.id, acc.host, acc.username, count)
        return count

    def _open(self, acc: FetchAccount) -> _Pop3 | _Imap:
        context = ssl.create_default_context()
        if not acc.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return (_Pop3 if acc.protocol == "pop3" else _Imap)(acc, self.config.timeout, context)

    async def _pass(self, acc: FetchAccount) -> int:
        seen = await self.routing.fetch_seen(acc.id)
        session = await asyncio.to_thread(self._open, replace(acc, password=self.box.open(acc.password)))
        count = 0
        too_big: list[str] = []
        try:
            listing = await asyncio.to_thread(session.listing)
            gone = seen - listing.keys()
            if gone:  # deleted on the remote side: forget them, UIDs are not reused within a UIDVALIDITY
                await self.routing.forget_fetched(acc.id, gone)
            for uid, ref in listing.items():
                if uid not in seen:
                    if count >= self.config.max_messages:
                        break
                    if await asyncio.to_thread(session.size, ref) > self.max_size:
                        too_big.append(uid)  # stays on the server, reported on the account
                        continue
                    data = await asyncio.to_thread(session.retrieve, ref)
                    await self._deliver(acc, uid, data)
                    count += 1
                if not acc.keep:
                    await asyncio.to_thread(session.delete, ref)  # only after our commit (or an earlier one)
        finally:
            await asyncio.to_thread(session.close)
        if too_big:
            raise _TooBig(f"{len(too_big)} message(s) larger than {self.max_size} octets left on the server "
                          f"(UID {', '.join(too_big[:5])})", count)
        return count

    async def _deliver(self, acc: FetchAccount, uid: str, raw: bytes) -> None:
        mark = (acc.id, uid)
        sender, rcpt, data = split_envelope(raw)
        recipients = ([rcpt] if rcpt else []) if acc.mode == "envelope" else [acc.account or ""]
        try:
            if not recipients:
                raise NotFound("unknown_user", "no Delivered-To line in a held message")
            await self.submitter.submit(sender, recipients, data, protocol="fetch", fetched=mark)
        except Refused as exc:
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
            await self.submitter.submit(sender, [await self.postmaster()], data, protocol="fetch", fetched=mark)

    def _bounce(self, acc: FetchAccount, uid: str, sender: str, recipients: Sequence[str], data: bytes,
                verdict: Verdict) -> bytes:
        hostname = self.submitter.ingest.hostname
        text = translate(verdict.key, "en").format_map(dict(verdict.args))
        statuses = [RecipientStatus(r, None, "failed", verdict.enhanced or "5.0.0", f"{verdict.code} {text}")
                    for r in recipients]
        now = time.time()
        return build_dsn(reporting_mta=hostname, sender=sender, queue_id=f"fetch{acc.id}.{uid}", arrival=now,
                         statuses=statuses, original=data, now=now)
