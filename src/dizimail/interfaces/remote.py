"""What the fetcher needs from a POP3 or IMAP client (RFC 1939, RFC 9051): list a remote mailbox by
stable UID, weigh and read a message, delete it after our commit.

``services.fetch`` decides what to fetch and when, and commits through ingest; a :class:`MailboxClient`
(``clients.fetch``) does the wire. Every network or protocol failure is a :class:`FetchFailed`.
"""

from __future__ import annotations

from typing import Protocol

from dizimail.model.outbound import FetchAccount


class FetchFailed(Exception):
    """The remote mailbox could not be reached or answered out of protocol; the pass ends, nothing is lost."""


class RemoteMailbox(Protocol):
    async def listing(self) -> dict[str, str]:
        """Remote UID (POP3 UIDL, or IMAP ``UIDVALIDITY.UID``) → the reference the other calls take."""

    async def size(self, ref: str) -> int:
        """Octets of one message (POP3 LIST n, IMAP RFC822.SIZE), asked before reading it."""

    async def retrieve(self, ref: str) -> bytes:
        """The whole message, CRLF line ends."""

    async def delete(self, ref: str) -> None:
        """Mark for deletion; takes effect at :meth:`close` (POP3 UPDATE state, IMAP EXPUNGE)."""

    async def close(self) -> None: ...


class MailboxClient(Protocol):
    async def open(self, account: FetchAccount, timeout: float, address: str | None = None) -> RemoteMailbox:
        """Connect (TLS or STARTTLS as the account says, verifying the certificate if it asks), log in with
        the account's plaintext password and open its INBOX. ``address``: connect to this IP address (one
        the caller checked) instead of resolving the host's name again; TLS still names the host."""
