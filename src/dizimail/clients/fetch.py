"""POP3 and IMAP clients of the fetcher (implements interfaces.remote.MailboxClient).

The stdlib's poplib and imaplib, run in threads (they block); every failure of theirs becomes a
FetchFailed, so the service knows nothing of sockets, TLS or either library.
"""

from __future__ import annotations

import asyncio
import imaplib
import poplib
import re
import socket
import ssl
from collections.abc import Callable
from typing import TypeVar

from dizimail.interfaces.remote import FetchFailed
from dizimail.model.outbound import FetchAccount

T = TypeVar("T")
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_FAILURES = (OSError, poplib.error_proto, imaplib.IMAP4.error, ssl.SSLError, EOFError, ValueError, IndexError)


async def _off_loop(fn: Callable[..., T], *args: object) -> T:
    try:
        return await asyncio.to_thread(fn, *args)
    except _FAILURES as exc:
        raise FetchFailed(f"{type(exc).__name__}: {exc}") from exc


class _PinnedPop3(poplib.POP3):
    """POP3 to a given address (``pinned``, checked by the caller) while the name stays the host's."""

    def __init__(self, host: str, port: int, pinned: str, timeout: float) -> None:
        self.pinned = pinned
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout: float) -> socket.socket:
        return socket.create_connection((self.pinned, self.port), timeout)


class _PinnedPop3Ssl(poplib.POP3_SSL):
    def __init__(self, host: str, port: int, pinned: str, timeout: float, context: ssl.SSLContext) -> None:
        self.pinned, self.tls = pinned, context
        super().__init__(host, port, timeout=timeout, context=context)

    def _create_socket(self, timeout: float) -> socket.socket:  # TLS to the address, for the host's name
        return self.tls.wrap_socket(socket.create_connection((self.pinned, self.port), timeout),
                                    server_hostname=self.host)


class _PinnedImap(imaplib.IMAP4):
    def __init__(self, host: str, port: int, pinned: str, timeout: float) -> None:
        self.pinned = pinned
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        return socket.create_connection((self.pinned, self.port), timeout)


class _PinnedImapSsl(imaplib.IMAP4_SSL):
    def __init__(self, host: str, port: int, pinned: str, timeout: float, context: ssl.SSLContext) -> None:
        self.pinned, self.tls = pinned, context
        super().__init__(host, port, ssl_context=context, timeout=timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        return self.tls.wrap_socket(socket.create_connection((self.pinned, self.port), timeout),
                                    server_hostname=self.host)


class _Pop3:
    def __init__(self, acc: FetchAccount, timeout: float, context: ssl.SSLContext, pinned: str | None = None) -> None:
        if acc.security == "tls":
            self.client: poplib.POP3 = poplib.POP3_SSL(acc.host, acc.port, timeout=timeout, context=context) \
                if pinned is None else _PinnedPop3Ssl(acc.host, acc.port, pinned, timeout, context)
        else:
            self.client = poplib.POP3(acc.host, acc.port, timeout=timeout) if pinned is None else \
                _PinnedPop3(acc.host, acc.port, pinned, timeout)
        try:  # a refused login (wrong password, the mailbox in use) must not leave the connection open
            if acc.security == "starttls":
                self.client.stls(context)
            self.client.user(acc.username)
            self.client.pass_(acc.password)
        except BaseException:
            self.client.close()
            raise

    def listing(self) -> dict[str, str]:
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
        try:
            self.client.quit()  # POP3 deletes take effect at QUIT (RFC 1939 UPDATE state)
        finally:
            self.client.close()  # poplib closes only after a good QUIT reply


class _Imap:
    def __init__(self, acc: FetchAccount, timeout: float, context: ssl.SSLContext, pinned: str | None = None) -> None:
        if acc.security == "tls":
            self.client: imaplib.IMAP4 = imaplib.IMAP4_SSL(acc.host, acc.port, ssl_context=context, timeout=timeout) \
                if pinned is None else _PinnedImapSsl(acc.host, acc.port, pinned, timeout, context)
        else:
            self.client = imaplib.IMAP4(acc.host, acc.port, timeout=timeout) if pinned is None else \
                _PinnedImap(acc.host, acc.port, pinned, timeout)
        try:  # as for POP3: nothing left open when the login or SELECT is refused
            if acc.security == "starttls":
                self.client.starttls(context)
            self.client.login(acc.username, acc.password)
            typ, data = self.client.select("INBOX")
            if typ != "OK":
                raise OSError(f"SELECT INBOX failed: {data!r}")
        except BaseException:
            self.client.shutdown()
            raise
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
        try:
            if self.deleted:
                self.client.expunge()
        finally:
            self.client.logout()  # shuts the socket down whatever the server answers


class StdlibMailbox:
    """One open remote mailbox; each call runs the blocking client in a thread."""

    def __init__(self, session: _Pop3 | _Imap) -> None:
        self.session = session

    async def listing(self) -> dict[str, str]:
        return await _off_loop(self.session.listing)

    async def size(self, ref: str) -> int:
        return await _off_loop(self.session.size, ref)

    async def retrieve(self, ref: str) -> bytes:
        return await _off_loop(self.session.retrieve, ref)

    async def delete(self, ref: str) -> None:
        await _off_loop(self.session.delete, ref)

    async def close(self) -> None:
        await _off_loop(self.session.close)


class StdlibMailboxClient:
    async def open(self, account: FetchAccount, timeout: float, address: str | None = None) -> StdlibMailbox:
        context = ssl.create_default_context()
        if not account.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        kind = _Pop3 if account.protocol == "pop3" else _Imap
        return StdlibMailbox(await _off_loop(kind, account, timeout, context, address))
