"""Size and line figures of a message body as it streams (shared by DATA and BDAT)."""

from __future__ import annotations

import re

_LF = 0x0A
_CR = 0x0D


class BodyMeter:
    """Counts octets and tracks the longest line and bare LFs (RFC 5322 §2.1.1 line limits).

    ``too_big`` is set once ``size`` exceeds ``max_size``. Works on whole chunks with
    C-speed bytes operations; a CRLF split across chunks is handled.
    """

    def __init__(self, max_size: int, host: str = "") -> None:
        self.max_size = max_size
        self.trace = TraceCounter(host)
        self.size = 0
        self.too_big = False
        self.bare_lf = False
        self.longest_line = 0
        self._line = 0  # octets of the current line so far
        self._out_cr = False  # last byte seen was CR

    def feed(self, out: bytes) -> None:
        if not out:
            return
        if not self.trace.done:
            self.trace.feed(out)
        self.size += len(out)
        if self.size > self.max_size:
            self.too_big = True
        straddle = self._out_cr and out[0] == _LF  # CR at the end of the previous output
        lines = out.replace(b"\r\n", b"\n").split(b"\n")
        if len(lines) > 1:
            if out.count(b"\n") - out.count(b"\r\n") - straddle > 0:
                self.bare_lf = True
            first = self._line + len(lines[0]) - straddle
            middle = max(map(len, lines[1:-1]), default=0)
            self.longest_line = max(self.longest_line, first, middle)
            self._line = len(lines[-1])
        else:
            self._line += len(out)
        self._out_cr = out[-1] == _CR
        self.longest_line = max(self.longest_line, self._line - self._out_cr)


_RECEIVED = re.compile(rb"\nreceived[ \t]*:", re.IGNORECASE)
_HEADER_END = re.compile(rb"\n\r?\n")
_VERDICT = re.compile(rb"\n(?:x-spam-[a-z]{1,12}|authentication-results)[ \t]*:", re.IGNORECASE)


class TraceCounter:
    """Counts the ``Received:`` fields of a message's header section as it streams (RFC 5321 §6.3 hop
    count), and how many of them ``host`` added (``by HOST (dizimail)``, our own trace line: a message
    coming back). Stops at the blank line that ends the header section. Each chunk is searched with
    C-speed regular expressions free of backtracking, so any input costs time linear in its size; a
    pattern split across chunks is found through the few bytes kept from the previous chunk."""

    def __init__(self, host: str = "") -> None:
        self.received = 0
        self.own = 0
        self.verdicts = 0  # X-Spam-* and Authentication-Results fields (services.policy.gateway)
        self.done = False
        self._own = re.compile(rb"\n\tby " + re.escape(host.encode("utf-8")) + rb" \(dizimail\)", re.IGNORECASE) \
            if host else None
        self._keep = 32 + len(host.encode("utf-8"))  # longer than any pattern, shorter than two
        self._tail = b"\n"  # the message starts a line

    def feed(self, data: bytes) -> None:
        if self.done or not data:
            return
        buf = self._tail + data
        seen = len(self._tail)  # a match ending inside the tail was counted with the previous chunk
        end = _HEADER_END.search(buf, max(0, seen - 2))
        stop = end.start() + 1 if end is not None else len(buf)
        self.received += sum(1 for m in _RECEIVED.finditer(buf, 0, stop) if m.end() > seen)
        self.verdicts += sum(1 for m in _VERDICT.finditer(buf, 0, stop) if m.end() > seen)
        if self._own is not None:
            self.own += sum(1 for m in self._own.finditer(buf, 0, stop) if m.end() > seen)
        if end is not None:
            self.done = True
        self._tail = buf[-self._keep:]
