"""Running a compiled Sieve script against one message (RFC 5228 §2.10): the actions, and whether the
implicit keep still stores the message in INBOX.

Every comparison costs at most the text's length times the key's (``:matches`` runs as a set of
states over the pattern, never backtracking), so a hostile header cannot make a rule slow; the script
is the user's own and its size is bounded when stored."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.header import decode_header
from email.utils import getaddresses

from dizimail.services.sieve.compile import Command, Match, Script, Test

MAX_ACTIONS = 32  # as Pigeonhole's sieve_max_actions
MAX_REDIRECTS = 4  # as Pigeonhole's sieve_max_redirects


class RuntimeFailure(Exception):
    """The script cannot finish (too many actions): the message is kept in INBOX (RFC 5228 §2.10.6)."""


@dataclass(frozen=True)
class Store:
    mailbox: str
    flags: frozenset[str] = frozenset()


@dataclass
class Outcome:
    stores: list[Store] = field(default_factory=list)  # explicit keep and fileinto, in order, once each
    redirects: list[str] = field(default_factory=list)
    discarded: bool = False
    reject: str | None = None
    ereject: bool = False
    implicit_keep: bool = True
    keep_flags: frozenset[str] = frozenset()  # the flags of the implicit keep
    error: str = ""  # set when the script failed: only the implicit keep applies


@dataclass(frozen=True)
class Message:
    """What a script reads of a message: envelope, header fields (name lower-cased → raw values in
    order), size in octets."""

    sender: str
    recipient: str
    headers: dict[str, list[str]]
    size: int

    @classmethod
    def parse(cls, raw: bytes, sender: str, recipient: str) -> Message:
        head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode("utf-8", "replace")
        fields: dict[str, list[str]] = {}
        name = None
        for line in head.replace("\r\n", "\n").split("\n"):
            if line[:1] in (" ", "\t") and name is not None:
                fields[name][-1] += " " + line.strip()
            elif ":" in line:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                fields.setdefault(name, []).append(value.strip())
        return cls(sender, recipient, fields, len(raw))


_ENCODED_WORD = re.compile(r"=\?[^?\s]{1,40}\?[bBqQ]\?[^?\s]*\?=")
_BETWEEN_WORDS = re.compile(r"(\?=)[ \t]+(?==\?)")


def _decoded(value: str) -> str:
    """RFC 2047 encoded words decoded, the rest (raw UTF-8 included) kept as it is; the white space
    between two encoded words goes (RFC 2047 §6.2)."""
    if "=?" not in value:
        return value

    def word(m: re.Match[str]) -> str:
        try:
            return "".join(part.decode(charset or "ascii", "replace") if isinstance(part, bytes) else part
                           for part, charset in decode_header(m.group(0)))
        except (ValueError, LookupError):
            return m.group(0)
    return _ENCODED_WORD.sub(word, _BETWEEN_WORDS.sub(r"\1", value))


def _fold(text: str, comparator: str) -> str:
    """i;ascii-casemap folds ASCII letters only (RFC 4790 §9.2)."""
    if comparator == "i;octet":
        return text
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _glob(pattern: str) -> list[str]:
    """``*`` any run, ``?`` one character, ``\\`` makes the next one literal (RFC 5228 §2.7.1)."""
    tokens, escaped = [], False
    for ch in pattern:
        if escaped:
            tokens.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "*" and tokens and tokens[-1] == "*":
            continue
        else:
            tokens.append(ch)
    if escaped:  # a backslash at the end stands for itself
        tokens.append("\\\\")
    return tokens


def _matches(text: str, pattern: str) -> bool:
    tokens = _glob(pattern)
    end = len(tokens)

    def close(states: set[int]) -> set[int]:
        for i in sorted(states):
            j = i
            while j < end and tokens[j] == "*":
                j += 1
                states.add(j)
        return states
    states = close({0})
    for ch in text:
        following: set[int] = set()
        for i in states:
            if i == end:
                continue
            token = tokens[i]
            if token == "*":
                following.add(i)
            elif token == "?" or token == ch or (len(token) == 2 and token[0] == "\\" and token[1] == ch):
                following.add(i + 1)
        if not following:
            return False
        states = close(following)
    return end in states


def _compare(value: str, how: Match) -> bool:
    folded = _fold(value, how.comparator)
    for key in how.keys:
        k = _fold(key, how.comparator)
        if how.match == ":is" and folded == k:
            return True
        if how.match == ":contains" and k in folded:
            return True
        if how.match == ":matches" and _matches(folded, k):
            return True
    return False


def _part(address: str, part: str) -> str | None:
    if part == ":all":
        return address
    if "@" not in address:
        return None if part == ":domain" else address
    local, _, domain = address.rpartition("@")
    return local if part == ":localpart" else domain


class _Run:
    def __init__(self, message: Message) -> None:
        self.message = message
        self.out = Outcome()
        self.flags: set[str] = set()
        self.actions = 0

    def test(self, t: Test) -> bool:
        m = self.message
        if t.kind in ("true", "false"):
            return t.kind == "true"
        if t.kind == "not":
            return not self.test(t.tests[0])
        if t.kind == "allof":
            return all(self.test(x) for x in t.tests)
        if t.kind == "anyof":
            return any(self.test(x) for x in t.tests)
        if t.kind == "exists":
            return all(name.lower() in m.headers for name in t.names)
        if t.kind == "size":
            return m.size > t.limit if t.over else m.size < t.limit
        assert t.how is not None
        if t.kind == "header":
            return any(_compare(_decoded(v), t.how) for name in t.names for v in m.headers.get(name.lower(), ()))
        if t.kind == "envelope":
            values = [{"from": m.sender, "to": m.recipient}.get(name.lower()) for name in t.names]
            parts = [_part(v, t.part) for v in values if v is not None]
            return any(p is not None and _compare(p, t.how) for p in parts)
        addresses: list[str] = []
        for name in t.names:
            for value in m.headers.get(name.lower(), ()):
                found = [a for _n, a in getaddresses([value]) if a]
                if found:
                    addresses += found
                elif t.part == ":all":  # not an address (a group, a typo): :all compares the text as it is
                    addresses.append(value.strip())  # (RFC 5228 §2.7.4; so does Pigeonhole)
        return any((p := _part(a, t.part)) is not None and _compare(p, t.how) for a in addresses)

    def act(self) -> None:
        self.actions += 1
        if self.actions > MAX_ACTIONS:
            raise RuntimeFailure(f"more than {MAX_ACTIONS} actions")

    def store(self, mailbox: str, flags: tuple[str, ...] | None) -> bool:
        """False when the mailbox was stored into already: once only, with the latest flags, and the
        earlier action's effect on the implicit keep stays (as Pigeonhole merges duplicates)."""
        self.act()
        chosen = frozenset(f.lower() if f.startswith("\\") else f for f in (flags if flags is not None
                                                                             else self.flags))
        for i, earlier in enumerate(self.out.stores):
            if earlier.mailbox == mailbox:
                self.out.stores[i] = Store(mailbox, chosen)
                return False
        self.out.stores.append(Store(mailbox, chosen))
        return True

    def block(self, commands: tuple[Command, ...]) -> bool:
        """False once ``stop`` ran."""
        for c in commands:
            if c.kind == "if":
                for test, body in c.branches:
                    if test is None or self.test(test):
                        if not self.block(body):
                            return False
                        break
            elif c.kind == "stop":
                return False
            elif c.kind == "keep":
                if self.store("INBOX", c.flags):
                    self.out.implicit_keep = False
            elif c.kind == "discard":
                self.out.discarded = True
                self.out.implicit_keep = False
            elif c.kind == "fileinto":
                if self.store(c.argument, c.flags) and not c.copy:
                    self.out.implicit_keep = False
            elif c.kind == "redirect":
                self.act()
                if len(self.out.redirects) >= MAX_REDIRECTS:
                    raise RuntimeFailure(f"more than {MAX_REDIRECTS} redirects")
                if c.argument not in self.out.redirects:
                    self.out.redirects.append(c.argument)
                    if not c.copy:
                        self.out.implicit_keep = False
            elif c.kind in ("reject", "ereject"):
                self.act()
                self.out.reject, self.out.ereject = c.argument, c.kind == "ereject"
                self.out.implicit_keep = False
            elif c.kind in ("setflag", "addflag", "removeflag"):
                flags = {f for value in (c.flags or ()) for f in value.split()}
                if c.kind == "setflag":
                    self.flags = flags
                elif c.kind == "addflag":
                    self.flags |= flags
                else:
                    self.flags -= flags
        return True


def run(script: Script, raw: bytes, sender: str, recipient: str) -> Outcome:
    """The actions ``script`` takes on the message ``raw`` delivered from ``sender`` to ``recipient``.
    A failing script keeps the message in INBOX and says why (``error``); nothing is lost."""
    state = _Run(Message.parse(raw, sender, recipient))
    try:
        state.block(script.commands)
    except RuntimeFailure as exc:
        return Outcome(error=str(exc))
    state.out.keep_flags = frozenset(f.lower() if f.startswith("\\") else f for f in state.flags)
    return state.out
