"""Token reader over one complete IMAP command (RFC 3501 §9, RFC 9051 §4, §9).

The framing layer (:mod:`~dizimail.codec.imap.parser`) joins the command's
line pieces, without CRLFs and without literal bodies, into one bytes
string; each literal body is stored under the offset just past its ``{n}``
announcement, which is where a line piece ended. The reader walks that
string with an index and compiled patterns, so no Python loop ever runs per
byte, and a ``{n}`` found anywhere else is a syntax error, never a literal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TypeVar

from dizimail.codec.imap.seqset import SequenceSet

T = TypeVar("T")


class ParseError(Exception):
    """A syntax error; ``text`` goes into the BAD reply, ``code`` is an optional response code."""

    def __init__(self, text: str, code: str | None = None, tag: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code
        self.tag = tag


# RFC 9051 §9: ATOM-CHAR is any CHAR except atom-specials "(" ")" "{" SP CTL "%" "*" DQUOTE "\" "]".
ATOM = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\\]]+')
ASTRING_ATOM = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\]+')  # ASTRING-CHAR adds "]"
TAG = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\+]+')  # ASTRING-CHAR except "+"
_LIST_ATOM = re.compile(rb'[^\x00-\x20\x7f-\xff(){"\\]+')  # list-char adds "%" "*"
# RFC 9051 §9 quoted: no CR, LF, NUL; "\" escapes only DQUOTE and "\". 8-bit is UTF-8 (RFC 6855 §3).
_QUOTED = re.compile(rb'"((?:[^"\\\x00\r\n]|\\["\\])*)"')  # not *+: wrong before Python 3.11.5
_QUOTED_PAIR = re.compile(rb'\\(["\\])')
LITERAL = re.compile(rb"(~?)\{([0-9]{1,18})([+-]?)\}")
_NUMBER = re.compile(rb"[0-9]{1,20}")
_SEQUENCE_SET = re.compile(rb"[0-9:*,$]+")
_FIELD_NAME = re.compile(rb"[!-9;-~]+")  # RFC 5322 §3.6.8 ftext
_FLAG = re.compile(rb'\\?[^\x00-\x20\x7f-\xff(){%*"\\\]]+')

SYSTEM_FLAGS = {f.upper(): f for f in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent")}
_DELIMITERS = b" ()[]<>"


def utf8(raw: bytes, what: str) -> str:
    """Decode a string argument as UTF-8 (RFC 9051 §4.3, RFC 6855 §3)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError(f"invalid UTF-8 in {what}") from None


def canonical_flag(flag: str) -> str:
    """System flags in their RFC 9051 §2.3.2 spelling; keywords and other flags as sent."""
    return SYSTEM_FLAGS.get(flag.upper(), flag) if flag.startswith("\\") else flag


class Reader:
    """A cursor over one command; every method raises :class:`ParseError` on mismatch."""

    __slots__ = ("_literals", "data", "pos")

    def __init__(self, data: bytes, literals: Mapping[int, tuple[bytes, bool]] | None = None) -> None:
        self.data = data
        self.pos = 0
        self._literals: Mapping[int, tuple[bytes, bool]] = literals or {}

    # ------------------------------------------------------------ punctuation

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def peek(self) -> int:
        """The next byte, or -1 at the end."""
        return self.data[self.pos] if self.pos < len(self.data) else -1

    def accept(self, token: bytes) -> bool:
        """Consume ``token`` (exact bytes) if it comes next."""
        if self.data.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def expect(self, token: bytes, what: str) -> None:
        if not self.accept(token):
            raise ParseError(f"expected {what}" if not self.at_end() else f"missing {what}")

    def sp(self, what: str = "argument") -> None:
        """One SP before the next argument."""
        if not self.accept(b" "):
            raise ParseError(f"missing {what}" if self.at_end() else f"expected space before {what}")

    def rest(self, limit: int) -> bytes | None:
        """The bytes from here to the end of the command, if at most ``limit`` and it carries no
        literal (a key for a cache of what they parse to)."""
        if self._literals or len(self.data) - self.pos > limit:
            return None
        return self.data[self.pos:]

    def end(self) -> None:
        if not self.at_end():
            raise ParseError("unexpected extra arguments")

    def match(self, pattern: re.Pattern[bytes], what: str) -> bytes:
        """Consume and return what ``pattern`` matches here."""
        found = self.try_match(pattern)
        if found is None:
            raise self.unexpected(what)
        return found

    def unexpected(self, what: str, prefix: str = "expected ") -> ParseError:
        """The error for a token that is not there: missing, 8-bit text outside a string (the
        usual mistake of clients sending UTF-8 search words bare), or something else."""
        if self.at_end():
            return ParseError(f"missing {what}")
        if self.data[self.pos] >= 0x80:
            return ParseError(f"8-bit text for {what} must be a quoted string or a literal")
        return ParseError(f"{prefix}{what}")

    def try_match(self, pattern: re.Pattern[bytes]) -> bytes | None:
        m = pattern.match(self.data, self.pos)
        if m is None:
            return None
        self.pos = m.end()
        return m[0]

    # ------------------------------------------------------------ atoms and numbers

    def atom(self, what: str) -> str:
        return self.match(ATOM, what).decode("ascii")

    def keyword(self, what: str) -> str:
        """An atom, upper-cased (command names, options, item names)."""
        return self.match(ATOM, what).decode("ascii").upper()

    def accept_keyword(self, word: str) -> bool:
        """Consume the atom ``word`` (case-insensitive) if it comes next as a whole atom."""
        n = len(word)
        if self.data[self.pos : self.pos + n].upper() != word.encode("ascii"):
            return False
        after = self.pos + n
        if after < len(self.data) and self.data[after] not in _DELIMITERS:
            return False
        self.pos = after
        return True

    def number(self, what: str, *, nonzero: bool = False, bits: int = 32) -> int:
        """RFC 9051 §9 number (32-bit) / nz-number / number64 (``bits=63``)."""
        value = int(self.match(_NUMBER, what))
        if value >= 2**bits or (nonzero and value == 0):
            raise ParseError(f"{what} out of range")
        return value

    def sequence_set(self, what: str = "sequence set") -> SequenceSet:
        text = self.match(_SEQUENCE_SET, what).decode("ascii")
        try:
            return SequenceSet.parse(text)
        except ValueError as e:
            raise ParseError(f"invalid {what}: {e}") from None

    def flag(self) -> str:
        """flag / flag-keyword / flag-extension (RFC 9051 §9), system flags canonicalised."""
        return canonical_flag(self.match(_FLAG, "flag").decode("ascii"))

    def flag_list(self) -> tuple[str, ...]:
        """``"(" [flag *(SP flag)] ")"``."""
        return tuple(self.items(self.flag, "flag list", allow_empty=True))

    # ------------------------------------------------------------ strings

    def _literal(self, binary_ok: bool) -> tuple[bytes, bool] | None:
        m = LITERAL.match(self.data, self.pos)
        if m is None:
            return None
        found = self._literals.get(m.end())
        if found is None:
            raise ParseError("invalid literal")
        if found[1] and not binary_ok:
            raise ParseError("literal8 not allowed here")
        self.pos = m.end()
        return found

    def string(self, what: str) -> bytes:
        """quoted / literal (RFC 9051 §9 ``string``)."""
        return self.string8(what, binary_ok=False)[0]

    def string8(self, what: str, *, binary_ok: bool = True) -> tuple[bytes, bool]:
        """quoted / literal / literal8 (RFC 3516 §4.4); returns (bytes, was literal8)."""
        m = _QUOTED.match(self.data, self.pos)
        if m is not None:
            self.pos = m.end()
            return _QUOTED_PAIR.sub(rb"\1", m[1]), False
        found = self._literal(binary_ok)
        if found is None:
            if self.peek() == 0x22:
                raise ParseError(f"invalid quoted string in {what}")
            raise self.unexpected(what, "expected string for ")
        return found

    def _stringish(self, atom: re.Pattern[bytes], what: str) -> bytes:
        if self.pos < len(self.data) and self.data[self.pos] in b'"{~':
            m = _QUOTED.match(self.data, self.pos)
            if m is not None:
                self.pos = m.end()
                return _QUOTED_PAIR.sub(rb"\1", m[1])
            found = self._literal(False)
            if found is not None:
                return found[0]
            if self.data[self.pos] == 0x22:
                raise ParseError(f"invalid quoted string in {what}")
        return self.match(atom, what)

    def astring(self, what: str) -> bytes:
        """1*ASTRING-CHAR / string (RFC 9051 §9 ``astring``)."""
        return self._stringish(ASTRING_ATOM, what)

    def astring_text(self, what: str) -> str:
        return utf8(self.astring(what), what)

    def header_field(self) -> str:
        """``header-fld-name`` (RFC 9051 §9: an astring), checked against RFC 5322 §3.6.8 ftext."""
        raw = self.astring("header field name")
        if _FIELD_NAME.fullmatch(raw) is None:
            raise ParseError("invalid header field name")
        return raw.decode("ascii")

    def nstring(self, what: str) -> bytes | None:
        """string / NIL."""
        if self.accept_keyword("NIL"):
            return None
        return self.string(what)

    def list_mailbox(self, what: str = "mailbox pattern") -> str:
        """1*list-char / string (RFC 9051 §9 ``list-mailbox``)."""
        return utf8(self._stringish(_LIST_ATOM, what), what)

    def mailbox(self, what: str = "mailbox name") -> str:
        """``mailbox`` (RFC 9051 §9): an astring, ``INBOX`` case-insensitive."""
        name = utf8(self.astring(what), what)
        return "INBOX" if name.upper() == "INBOX" else name

    # ------------------------------------------------------------ lists

    def items(self, parse_item: Callable[[], T], what: str, *, allow_empty: bool = False) -> list[T]:
        """``"(" item *(SP item) ")"`` (or ``"()"`` when ``allow_empty``)."""
        self.expect(b"(", f"parenthesised {what}")
        out: list[T] = []
        if self.accept(b")"):
            if not allow_empty:
                raise ParseError(f"empty {what}")
            return out
        out.append(parse_item())
        while not self.accept(b")"):
            if self.at_end():
                raise ParseError(f"missing ')' after {what}")
            self.sp(what)
            out.append(parse_item())
        return out
