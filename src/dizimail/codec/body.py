"""Size and line figures of a message body as it streams (shared by DATA and BDAT)."""

from __future__ import annotations

_LF = 0x0A
_CR = 0x0D


class BodyMeter:
    """Counts octets and tracks the longest line and bare LFs (RFC 5322 §2.1.1 line limits).

    ``too_big`` is set once ``size`` exceeds ``max_size``. Works on whole chunks with
    C-speed bytes operations; a CRLF split across chunks is handled.
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.size = 0
        self.too_big = False
        self.bare_lf = False
        self.longest_line = 0
        self._line = 0  # octets of the current line so far
        self._out_cr = False  # last byte seen was CR

    def feed(self, out: bytes) -> None:
        if not out:
            return
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
