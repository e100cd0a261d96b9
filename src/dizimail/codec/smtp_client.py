"""The client side of SMTP (RFC 5321 §4.2 replies, §4.5.2 transparency), sans-IO.

:class:`ReplyParser` turns the bytes a server sends into complete replies,
however they are split across reads and however many a pipelined group
(RFC 2920) brings at once. :class:`DataEncoder` turns message bytes into the
DATA stream: lines end in CRLF (a bare LF or CR becomes CRLF, as Postfix's
smtp client does), a line starting with "." gets a second one, and
:meth:`DataEncoder.end` closes with CRLF "." CRLF. Command builders quote
nothing the caller did not validate: addresses come from our own parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_REPLY_LINE = 4096  # RFC 5321 §4.5.3.1.5 says 512; real servers send longer texts
MAX_REPLY_LINES = 100
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)")


class ReplyError(Exception):
    """The server sent something that is not an SMTP reply."""


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(line for line in self.lines if line)

    @property
    def enhanced(self) -> str:
        """The RFC 3463 status code of the first line, or one derived from the basic code."""
        m = _ENHANCED.match(self.lines[0] if self.lines else "")
        if m is not None:
            return f"{m.group(1)}.{m.group(2)}.{m.group(3)}"
        return f"{self.code // 100}.0.0"

    @property
    def positive(self) -> bool:
        return 200 <= self.code < 400

    @property
    def permanent(self) -> bool:
        return self.code >= 500

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


class ReplyParser:
    """Incremental reply parser: ``feed`` bytes, get every reply they complete."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._lines: list[str] = []
        self._code = 0

    def feed(self, data: bytes) -> list[Reply]:
        self._buf += data
        out: list[Reply] = []
        while True:
            end = self._buf.find(b"\n")
            if end < 0:
                if len(self._buf) > MAX_REPLY_LINE:
                    raise ReplyError("reply line too long")
                return out
            raw = bytes(self._buf[:end]).rstrip(b"\r")
            del self._buf[: end + 1]
            if len(raw) > MAX_REPLY_LINE:
                raise ReplyError("reply line too long")
            if len(raw) < 3 or not raw[:3].isdigit() or (len(raw) > 3 and raw[3:4] not in (b" ", b"-")):
                raise ReplyError(f"malformed reply line {raw[:40]!r}")
            code = int(raw[:3])
            if self._lines and code != self._code:
                raise ReplyError("reply code changed inside a multi-line reply")
            if not 200 <= code <= 599 and code != 354 and code != 334:
                raise ReplyError(f"reply code {code} out of range")
            self._code = code
            self._lines.append(raw[4:].decode("utf-8", "replace"))
            if len(self._lines) > MAX_REPLY_LINES:
                raise ReplyError("too many reply lines")
            if raw[3:4] != b"-":
                out.append(Reply(code, tuple(self._lines)))
                self._lines = []


class DataEncoder:
    """Streams message bytes into DATA form; feed chunks in order, then call :meth:`end`."""

    def __init__(self) -> None:
        self._bol = True  # the next byte starts a line
        self._cr = False  # the last byte fed was a CR (its LF may come in the next chunk)

    def feed(self, chunk: bytes) -> bytes:
        if not chunk:
            return b""
        if self._cr and chunk[:1] == b"\n":
            chunk = chunk[1:]  # the CRLF was already written whole
            self._bol = True
            if not chunk:
                self._cr = False
                return b""
        self._cr = chunk.endswith(b"\r")
        # Normalise line ends: CRLF and bare CR/LF all become CRLF.
        text = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
        text = text.replace(b"\r\n.", b"\r\n..")
        if self._bol and text[:1] == b".":
            text = b"." + text
        self._bol = text.endswith(b"\r\n")
        return text

    def end(self) -> bytes:
        return (b"" if self._bol else b"\r\n") + b".\r\n"


def command(verb: str, *args: str) -> bytes:
    line = " ".join((verb, *args)) if args else verb
    if "\r" in line or "\n" in line:
        raise ValueError("CR or LF inside an SMTP command")
    return (line + "\r\n").encode("utf-8")


def xtext(value: str) -> str:
    """RFC 3461 §4 xtext encoding, for ORCPT and ENVID values."""
    return "".join(c if "!" <= c <= "~" and c not in "+=" else "".join(f"+{b:02X}" for b in c.encode())
                   for c in value)


def parse_ehlo(reply: Reply) -> dict[str, str]:
    """Extension keywords (upper case) → their parameters, from a 250 EHLO reply (RFC 5321 §4.1.1.1)."""
    out: dict[str, str] = {}
    for line in reply.lines[1:]:
        keyword, _, params = line.strip().partition(" ")
        if keyword:
            out[keyword.upper()] = params
    return out
