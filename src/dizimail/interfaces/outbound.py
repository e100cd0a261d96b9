"""Outbound SMTP: what the queue runner needs from a network client (RFC 5321 §3, RFC 2920, RFC 3207).

The runner (services.queue) decides where and when; an :class:`Outbound`
implementation (clients.smtp) does the wire: connect, EHLO, STARTTLS,
AUTH, then one pipelined transaction per message on a connection that can
be reused for the next message to the same next hop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from dizimail.codec.smtp_client import Reply


@dataclass(frozen=True, slots=True)
class Hop:
    """One host to try. ``tls``: "none" | "may" (STARTTLS when offered) | "verify" (required, verified)."""

    host: str
    port: int
    tls: str = "may"
    server_name: str = ""  # name the certificate must match under "verify" (default: host)
    username: str = ""  # AUTH PLAIN, only over TLS whose certificate verified or matched ``fingerprint``
    password: str = ""
    fingerprint: str = ""  # SHA-256 of the certificate (hex, lower case): pinned, replaces CA verification


@dataclass(frozen=True, slots=True)
class Envelope:
    sender: str
    recipients: tuple[str, ...]
    mail_params: tuple[str, ...] = ()
    rcpt_params: tuple[tuple[str, ...], ...] = ()  # per recipient, same order


@dataclass(frozen=True, slots=True)
class TransactionResult:
    """Replies to one transaction: MAIL, each RCPT (in order), and ``data``: the reply after the message,
    or the refusal of the DATA command itself; None when no recipient was accepted."""

    mail: Reply
    rcpts: tuple[Reply, ...]
    data: Reply | None


class ConnectFailed(Exception):
    """No SMTP session could be set up with the hop (TCP, greeting, EHLO, TLS or AUTH)."""

    def __init__(self, detail: str, reply: Reply | None = None) -> None:
        super().__init__(detail)
        self.reply = reply


class SessionLost(Exception):
    """The connection broke or a reply timed out during a transaction (the outcome is unknown)."""


class OutboundSession(Protocol):
    @property
    def usable(self) -> bool:
        """True while the connection is open and in a state to start another transaction."""

    @property
    def tls(self) -> str | None:
        """A description of the TLS in use, or None."""

    @property
    def dot_sent(self) -> bool:
        """Whether the last transaction got as far as sending the end of the message."""

    def supports(self, keyword: str) -> bool:
        """Whether the server advertised the EHLO keyword (e.g. "DSN")."""

    async def send(self, envelope: Envelope, body: AsyncIterator[bytes]) -> TransactionResult:
        """Run one transaction (RFC 2920 pipelined when offered); raises SessionLost if the outcome is unknown."""

    async def reset(self) -> None:
        """RSET, so the connection can carry another message."""

    async def close(self) -> None:
        """QUIT and close."""


class Outbound(Protocol):
    async def connect(self, hop: Hop, helo: str) -> OutboundSession:
        """Open a session with ``hop``; raises ConnectFailed."""
