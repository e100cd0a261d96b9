"""Incremental IMAP command parser: bytes in, events out (RFC 9051 §2.2, §4.3, §7.5), sans-IO.

A command is one or more lines: a line ending in a literal announcement
(``{n}`` synchronizing, ``{n+}`` / ``{n-}`` non-synchronizing, RFC 7888;
``~{n}`` literal8, RFC 3516) is followed by exactly n bytes of literal and
then by the rest of the command on a new line. The parser collects the line
pieces and literal bodies until a line ends without an announcement, then
hands them to :mod:`~dizimail.codec.imap.grammar`.

What must never happen: a literal body read as a command, a line or literal
buffered past its limit, or a rejected command's trailing bytes taken for a
new command. So every limit is checked before bytes are kept; a refused
non-synchronizing literal is skipped by counting (``feed`` drops those bytes
without storing them), then the rest of its command; a refused
synchronizing literal is not expected at all (the client waits for ``+``).
A synchronizing literal is only announced to the session once the tag and
command name are known and the line so far has no open quoted string, so
garbage gets BAD at once instead of an invitation to send more.

Lines end with CRLF; a bare LF is accepted too (the CR is then absent).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from dizimail.codec.imap.events import (
    CommandReady,
    Event,
    IdleDone,
    LiteralTooLarge,
    Malformed,
    NeedContinuation,
    SaslResponse,
)
from dizimail.codec.imap.grammar import parse_command, parse_head
from dizimail.codec.imap.reader import TAG, ParseError, Reader

__all__ = [
    "CommandReady",
    "Event",
    "IdleDone",
    "ImapParser",
    "LiteralTooLarge",
    "Malformed",
    "NeedContinuation",
    "SaslResponse",
]

_TAIL = 32  # bytes of a discarded line kept to see whether it announced a literal
_LITERAL_TAIL = re.compile(rb"\{([0-9]+)([+-]?)\}")
_MAX_SIZE_DIGITS = 18
_QUOTE_OR_ESCAPE = re.compile(rb'["\\]')
_COMMAND, _IDLE, _SASL = range(3)


def _quotes_closed(line: bytes, end: int) -> bool:
    """Whether every quoted string in ``line[:end]`` is closed (a backslash escapes the next byte
    inside one). A scan rather than a regular expression with possessive quantifiers: Python before
    3.11.5 matched those wrongly (Debian 12 has 3.11.2), and one with plain ones can backtrack."""
    pos = 0
    while (opening := line.find(b'"', pos, end)) >= 0:
        pos = opening + 1
        while True:
            found = _QUOTE_OR_ESCAPE.search(line, pos, end)
            if found is None:
                return False
            pos = found.start() + (2 if line[found.start()] == 0x5C else 1)
            if line[found.start()] == 0x22:
                break
    return True


def _announced(line: bytes) -> tuple[int | None, bool, bool, int] | None:
    """The literal announced at the end of ``line``: (size or None if absurd, synchronizing, literal8, start)."""
    if not line.endswith(b"}"):
        return None
    start = line.rfind(b"{")
    m = _LITERAL_TAIL.fullmatch(line, start) if start >= 0 else None
    if m is None:
        return None
    binary = start > 0 and line[start - 1] == 0x7E  # "~"
    size = int(m[1]) if len(m[1]) <= _MAX_SIZE_DIGITS else None
    return size, not m[2], binary, start - binary


class ImapParser:
    """Turn client bytes into :data:`~dizimail.codec.imap.events.Event` values.

    Call :meth:`feed` with whatever arrived, then :meth:`next` until it
    returns None. ``max_line`` bounds a command's text (literal bodies
    excluded), ``max_literal`` one literal, ``max_command`` the sum of one
    command's literals (MULTIAPPEND; default twice ``max_literal``). The
    limits are plain attributes: a session may raise them after login.
    ``admit(size)`` is asked before a literal within those limits is
    kept; False refuses it (``LiteralTooLarge`` with ``busy``), so a
    session can charge literals to a budget shared with other sessions.
    """

    def __init__(
        self, max_line: int = 64 * 1024, max_literal: int = 64 * 1024 * 1024, max_command: int | None = None,
        admit: Callable[[int], bool] | None = None,
    ) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self.max_command = 2 * max_literal if max_command is None else max_command
        self.admit = admit
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf already searched for LF
        self._mode = _COMMAND
        self._skip = 0  # bytes of a refused literal still to drop
        self._discard = False  # dropping the rest of a refused command
        self._tail = b""  # end of the line being dropped
        self._literal = -1  # size of the literal being read, -1 when reading a line
        self._literal8 = False
        self._reset()

    def _reset(self) -> None:
        self._pieces: list[bytes] = []
        self._length = 0  # command text so far, CRLFs and literal bodies excluded
        self._literals: dict[int, tuple[bytes, bool]] = {}
        self._literal_total = 0
        self._tag: str | None = None
        self._name = ""

    # ------------------------------------------------------------ public API

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        if self._skip and not self._buf:  # a refused literal: never store it
            dropped = min(self._skip, len(data))
            self._skip -= dropped
            data = data[dropped:]
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes held: the unparsed input plus the command collected so far (for limits and metrics)."""
        return len(self._buf) + self._length + sum(len(data) for data, _ in self._literals.values())

    def expect_idle_done(self) -> None:
        """The next line ends IDLE: ``DONE`` gives :class:`IdleDone`, anything else Malformed (RFC 2177 §3)."""
        self._between_commands()
        self._mode = _IDLE

    def expect_sasl_response(self) -> None:
        """The next line is an AUTHENTICATE response, returned as :class:`SaslResponse` (RFC 9051 §6.2.2)."""
        self._between_commands()
        self._mode = _SASL

    def take_unparsed(self) -> bytes:
        """Hand back what was received after the last command and not parsed yet: after COMPRESS
        (RFC 4978 §3) those bytes are compressed, and the connection must inflate them first."""
        self._between_commands()
        data = bytes(self._buf)
        self._buf.clear()
        self._scanned = 0
        return data

    def reject_continuation(self) -> None:
        """The session refused a synchronizing literal (RFC 9051 §7.5): drop the command, expect a new one."""
        if self._literal < 0 or not self._pieces:
            raise RuntimeError("no synchronizing literal is pending")
        self._literal = -1
        self._reset()

    def next(self) -> Event | None:
        """The next event, or None when more bytes are needed."""
        while True:
            if self._skip:
                dropped = min(self._skip, len(self._buf))
                del self._buf[:dropped]
                self._skip -= dropped
                if self._skip:
                    return None
            if self._literal >= 0:
                if len(self._buf) < self._literal:
                    return None
                self._literals[self._length] = (bytes(self._buf[: self._literal]), self._literal8)
                del self._buf[: self._literal]
                self._literal = -1
            lf = self._buf.find(b"\n", self._scanned)
            if lf < 0:
                return self._partial_line()
            line = bytes(self._buf[:lf])
            del self._buf[: lf + 1]
            self._scanned = 0
            if self._discard:  # the CR may sit in the kept tail, so strip it after joining
                self._end_discarded_line((self._tail + line[-_TAIL:]).removesuffix(b"\r"))
                continue
            line = line.removesuffix(b"\r")
            if self._length + len(line) > self.max_line:
                refused = self._too_long(line)
                self._end_discarded_line(line[-_TAIL:])
                return refused
            event = self._line(line)
            if event is not None:
                return event

    # ------------------------------------------------------------ framing

    def _between_commands(self) -> None:
        if self._pieces or self._literal >= 0 or self._skip or self._discard:
            raise RuntimeError("the parser is in the middle of a command")

    def _partial_line(self) -> Event | None:
        """No LF yet: keep the bytes, unless they are being dropped or already over the limit."""
        if self._discard:
            self._tail = (self._tail + bytes(self._buf[-_TAIL:]))[-_TAIL:]
            self._buf.clear()
            self._scanned = 0
            return None
        if self._length + len(self._buf) > self.max_line + 1:  # + 1: the CR may still come
            event = self._too_long(bytes(self._buf[:1024]))
            self._tail = bytes(self._buf[-_TAIL:])
            self._buf.clear()
            self._scanned = 0
            self._discard = True
            return event
        self._scanned = len(self._buf)
        return None

    def _too_long(self, start: bytes) -> Malformed:
        tag = self._tag
        if self._mode == _COMMAND and not self._pieces:
            m = TAG.match(start)
            tag = m[0].decode("ascii") if m is not None and start[m.end() : m.end() + 1] == b" " else None
        elif self._mode != _COMMAND:
            tag = None
        self._mode = _COMMAND
        self._reset()
        return Malformed(tag, "line too long")

    def _end_discarded_line(self, tail: bytes) -> None:
        """A dropped line ended: a non-synchronizing literal it announced is dropped too, else the command is over."""
        self._tail = b""
        found = _announced(tail)
        if found is not None and found[0] is not None and not found[1]:
            self._skip = found[0]
            self._discard = True
        else:
            self._discard = False

    def _refuse(self, event: Event, found: tuple[int | None, bool, bool, int] | None) -> Event:
        """Forget the command; skip the non-synchronizing literal it announced (and what follows it)."""
        self._reset()
        if found is not None and found[0] is not None and not found[1]:
            self._skip = found[0]
            self._discard = True
        return event

    def _line(self, line: bytes) -> Event | None:
        if self._mode != _COMMAND:
            return self._special_line(line)
        found = _announced(line)
        if found is None:
            self._pieces.append(line)
            data = b"".join(self._pieces)
            literals = self._literals
            self._reset()
            try:
                tag, command = parse_command(data, literals)
            except ParseError as e:
                return Malformed(e.tag, e.text, e.code)
            return CommandReady(tag, command)
        size, synchronizing, binary, start = found
        if not self._pieces:
            try:
                tag, name, uid = parse_head(Reader(line[:start]))
            except ParseError as e:
                return self._refuse(Malformed(e.tag, e.text, e.code), found)
            self._tag, self._name = tag, f"UID {name}" if uid else name
        tag = self._tag or ""
        if not _quotes_closed(line, start):
            return self._refuse(Malformed(tag, "unterminated quoted string"), found)
        if size is None:
            return self._refuse(Malformed(tag, "literal size out of range"), found)
        if size > self.max_literal or self._literal_total + size > self.max_command:
            return self._refuse(LiteralTooLarge(tag, size, synchronizing), found)
        if self.admit is not None and not self.admit(size):
            return self._refuse(LiteralTooLarge(tag, size, synchronizing, busy=True), found)
        self._pieces.append(line)
        self._length += len(line)
        self._literal_total += size
        self._literal = size
        self._literal8 = binary
        return NeedContinuation(tag, size, self._name) if synchronizing else None

    def _special_line(self, line: bytes) -> Event:
        mode, self._mode = self._mode, _COMMAND
        if mode == _IDLE:
            return IdleDone() if line.upper() == b"DONE" else Malformed(None, "expected DONE")
        try:
            return SaslResponse(line.decode("ascii"))
        except UnicodeDecodeError:
            return Malformed(None, "invalid SASL response")
