"""ManageSieve (RFC 5804) on the wire: a command line into tokens, and response strings out.

A command is an atom (its name) and arguments: quoted strings, literals (``{N+}`` then a line break and N
octets, RFC 5804 §4; ``{N}`` is taken the same way, as Dovecot does) and atoms (numbers). A literal
ends its line: the session reads its octets, then the rest of the command as a further line, and gives
that to :meth:`CommandReader.feed` again. Sans-IO: bytes in, tokens or :class:`SieveProtocolError` out."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_ARGUMENTS = 8


class SieveProtocolError(ValueError):
    pass


@dataclass(frozen=True)
class Token:
    value: str
    quoted: bool  # a string (quoted or literal), else an atom


@dataclass
class CommandReader:
    """Collects one command over its lines and literals."""

    tokens: list[Token] = field(default_factory=list)

    def feed(self, line: bytes) -> int | None:
        """Take one line (without its CRLF); returns the size of the literal that ends it (to read next and
        pass to :meth:`literal`), or None when the command is complete."""
        i, n = 0, len(line)
        while i < n:
            ch = line[i:i + 1]
            if ch == b" ":
                i += 1
                continue
            if len(self.tokens) >= MAX_ARGUMENTS + 1:
                raise SieveProtocolError("too many arguments")
            if ch == b'"':
                i = self._quoted(line, i + 1)
            elif ch == b"{":
                end = line.find(b"}", i)
                if end < 0 or end != n - 1:
                    raise SieveProtocolError("a literal must end its line")
                spec = line[i + 1:end].rstrip(b"+")
                if not spec.isdigit() or len(spec) > 10:
                    raise SieveProtocolError("bad literal size")
                return int(spec)
            else:
                end = i
                while end < n and line[end:end + 1] not in (b" ", b'"', b"{"):
                    end += 1
                atom = line[i:end]
                if not atom.isascii() or any(c < 0x21 or c > 0x7E for c in atom):
                    raise SieveProtocolError("bad characters in an atom")
                self.tokens.append(Token(atom.decode(), False))
                i = end
        return None

    def literal(self, data: bytes) -> None:
        self.tokens.append(Token(_text(data), True))

    def _quoted(self, line: bytes, i: int) -> int:
        out = bytearray()
        n = len(line)
        while i < n:
            c = line[i]
            if c == 0x22:  # "
                self.tokens.append(Token(_text(bytes(out)), True))
                return i + 1
            if c == 0x5C:  # backslash: only \" and \\ (RFC 5804 §4 QUOTED-SPECIALS)
                if i + 1 >= n or line[i + 1] not in (0x22, 0x5C):
                    raise SieveProtocolError("bad escape in a quoted string")
                out.append(line[i + 1])
                i += 2
                continue
            if c in (0x0D, 0x0A, 0):
                raise SieveProtocolError("bad character in a quoted string")
            out.append(c)
            i += 1
        raise SieveProtocolError("a quoted string is not closed")


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SieveProtocolError("strings must be UTF-8") from None


def string(text: str) -> str:
    """A response string: quoted when it can be (RFC 5804 §4: no CR, LF, NUL, at most 1024 octets),
    else a literal."""
    data = text.encode()
    if len(data) <= 1024 and not any(c in text for c in "\r\n\0"):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "{" + str(len(data)) + "}\r\n" + text
