"""What checks look at: the client, the envelope so far, the recipient at hand, the message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from dizimail.model.types import Account
from dizimail.services.policy.verdict import Finding, Stage
from dizimail.services.routing import Resolution


class Mode(StrEnum):
    """How a message comes in: the SMTP listener's mode, or one of the ways this system writes or
    fetches mail itself, which carry no client address to judge (:data:`OWN`):

    * ``local``: messages it makes (DSNs, notices, webmail later);
    * ``fetch``: a user's external mailbox, fetched (services.fetch, account mode): internet mail that no
      layer here has seen, so the content filter judges it and verdict headers in it are removed;
    * ``poll``: the holding mailbox of this organisation's own gateway (envelope mode): the gateway
      judged it, and its ``X-Spam-Score`` is believed as from a gateway pushing over SMTP.
    """

    MX = "mx"
    SUBMISSION = "submission"
    SMTPS = "smtps"
    LOCAL = "local"
    FETCH = "fetch"
    POLL = "poll"


OWN = frozenset({Mode.LOCAL, Mode.FETCH, Mode.POLL})  # no SMTP client: nothing of layers 1-2 applies


@dataclass
class Client:
    ip: str
    mode: Mode
    tls: bool = False
    helo: str | None = None
    account: Account | None = None  # authenticated (AUTH, or the webmail user)


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """Figures of a received message, measured while it streamed in (codec.body.BodyMeter)."""

    size: int
    too_big: bool = False
    bare_lf: bool = False
    longest_line: int = 0
    received: int = 0  # Received: header fields (RFC 5321 §6.3 hop count)
    own_received: int = 0  # of those, ones this server added (a message coming back to us)
    verdict_fields: int = 0  # X-Spam-* and Authentication-Results fields in its header (codec.body.TraceCounter)
    read: Callable[[], Awaitable[bytes]] | None = None  # the message as received (Reception.reader), if checks need it


@dataclass
class Facts:
    """One question to the checks. ``sender`` is the reverse-path ("" for the null sender);
    ``rcpt`` the recipient being decided (lower-case) and ``shown`` as the client wrote it."""

    stage: Stage
    client: Client
    sender: str = ""
    params: Mapping[str, str | None] = field(default_factory=dict)
    recipients: int = 0  # recipients accepted so far in this transaction
    rcpt: str = ""
    shown: str = ""
    resolution: Resolution | None = None
    message: MessageFacts | None = None
    rcpt_domains: tuple[str, ...] = ()  # at DATA: the domains of the local recipients
    rcpt_addresses: tuple[str, ...] = ()  # at DATA: every recipient (services.ingest.Envelope.addresses)
    findings: list[Finding] = field(default_factory=list)  # the caller's: what scoring checks saw so far
    early: int | None = None  # at GREET: bytes the client sent before the greeting was complete
