"""What :class:`~dizimail.codec.imap.parser.ImapParser` hands the session (RFC 9051 §2.2, §7.5).

Each event calls for exactly one action: run a command, send a continuation
request, answer BAD / NO, or resume after IDLE / a SASL step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from dizimail.codec.imap.commands import Command


@dataclass(frozen=True, slots=True)
class CommandReady:
    """A complete, well-formed command and its tag (RFC 9051 §2.2.1)."""

    tag: str
    command: Command


@dataclass(frozen=True, slots=True)
class NeedContinuation:
    """The client announced a synchronizing literal ``{size}`` (RFC 9051 §4.3, §7.5).

    The session replies ``+ Ready`` and the parser then reads ``size`` bytes;
    or it refuses (e.g. APPENDLIMIT, quota, not authenticated) with a tagged
    NO / BAD and calls ``ImapParser.reject_continuation()``, since the client
    will not send the literal. ``command`` is the upper-cased command name
    (``"APPEND"``, ``"UID SEARCH"``).
    """

    tag: str
    size: int = 0
    command: str = ""


@dataclass(frozen=True, slots=True)
class Malformed:
    """A command the parser refuses; answer ``tag BAD text``, or ``* BAD text`` when ``tag`` is None.

    The parser skips whatever of that command is still to come (the rest of
    the line and any non-synchronizing literal it announced) before it
    returns another event. ``code`` is a response code for the reply; with
    ``BADCHARSET`` RFC 9051 §6.4.4 asks for ``tag NO [BADCHARSET (UTF-8)] text``
    instead of BAD.
    """

    tag: str | None
    text: str
    code: str | None = None


@dataclass(frozen=True, slots=True)
class LiteralTooLarge:
    """A literal above ``max_literal`` (or the command above ``max_command``), RFC 7888 §4.

    Answer ``tag NO [TOOBIG] ...`` (RFC 4469 §5 / RFC 7889); for a
    synchronizing literal BAD is as good: the client will not send the data.
    The parser discards a non-synchronizing literal byte by byte as it
    arrives, without buffering it, then the rest of that command.
    ``busy``: within the limits, but the parser's ``admit`` refused it (the
    node holds as much literal data as it may): a temporary ``NO [LIMIT]``.
    """

    tag: str
    size: int
    synchronizing: bool
    busy: bool = False


@dataclass(frozen=True, slots=True)
class IdleDone:
    """The client ended IDLE with DONE (RFC 2177 §3, RFC 9051 §6.3.13)."""


@dataclass(frozen=True, slots=True)
class SaslResponse:
    """One client line during AUTHENTICATE (RFC 9051 §6.2.2); ``"*"`` cancels the exchange."""

    line: str


Event: TypeAlias = CommandReady | NeedContinuation | Malformed | LiteralTooLarge | IdleDone | SaslResponse
