"""RFC 5322 address lists, parsed leniently for IMAP ENVELOPE and search.

Grammar of RFC 5322 §3.4 (mailbox, name-addr, angle-addr, group) with the
obsolete forms of §4.4 that old mail still carries: a route before the
addr-spec (``<@relay,@relay2:user@host>``, the IMAP "at-domain-list"),
phrases with dots, and an RFC 822 comment as the only name
(``user@host (Real Name)``). Bare words without ``@`` become a mailbox with
no domain. Encoded words are left alone; the caller decides to decode them.

Input is a ``str``; for byte-exact ENVELOPE output pass the raw field value
decoded as Latin-1 and encode the results back the same way. Linear time,
never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dizimail.codec.mime.params import read_quoted, skip_comment

_ATOM = re.compile(r'[^ \t\r\n(<>@,;:."\[]+')  # ASCII white space only: Latin-1 text carries \xa0 bytes
_SPECIALS = "<>@,;:."


@dataclass(frozen=True, slots=True)
class Mailbox:
    """One mailbox (RFC 5322 §3.4): display name, obsolete route, local part, domain."""

    name: str | None
    route: str | None
    local: str | None
    domain: str | None


@dataclass(frozen=True, slots=True)
class Group:
    """A group (RFC 5322 §3.4): its display name and member mailboxes."""

    name: str
    members: tuple[Mailbox, ...]


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "atom", "quoted", "comment", "literal" or one of _SPECIALS
    value: str
    space: bool  # white space or a comment came before it


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    n = len(text)
    space = False
    while pos < n:
        char = text[pos]
        if char in " \t\r\n":
            space = True
            pos += 1
            continue
        if char == "(":
            end = skip_comment(text, pos)
            body = text[pos + 1 : end - 1 if text[end - 1 : end] == ")" else end]
            tokens.append(_Token("comment", body.replace("\\", "").strip(), space))
            space = True
            pos = end
            continue
        if char == '"':
            value, pos = read_quoted(text, pos)
            tokens.append(_Token("quoted", value, space))
        elif char == "[":
            close = text.find("]", pos)
            end = n if close < 0 else close + 1
            tokens.append(_Token("literal", text[pos:end], space))
            pos = end
        elif char in _SPECIALS:
            tokens.append(_Token(char, char, space))
            pos += 1
        else:
            match = _ATOM.match(text, pos)
            end = match.end() if match else pos + 1
            tokens.append(_Token("atom", text[pos:end], space))
            pos = end
        space = False
    return tokens


def _phrase(tokens: list[_Token]) -> str:
    out: list[str] = []
    for token in tokens:
        if token.kind == "comment":
            continue
        if token.space and out:
            out.append(" ")
        out.append(token.value)
    return "".join(out)


def _quote_local(value: str) -> str:
    if _ATOM.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _glue(tokens: list[_Token]) -> str:
    """Tokens of a local part or domain joined without white space, quoted strings re-quoted."""
    return "".join(_quote_local(t.value) if t.kind == "quoted" else t.value for t in tokens)


def _addr_spec(words: list[_Token]) -> tuple[str | None, str | None]:
    at = max((i for i, t in enumerate(words) if t.kind == "@"), default=-1)
    if at < 0:
        return (_glue(words) or None), None
    return (_glue(words[:at]) or None), (_glue(words[at + 1 :]) or None)


def _mailbox(chunk: list[_Token]) -> Mailbox | None:
    words = [t for t in chunk if t.kind != "comment"]
    if not words:
        return None
    angle = next((i for i, t in enumerate(words) if t.kind == "<"), -1)
    if angle >= 0:
        close = next((i for i in range(angle + 1, len(words)) if words[i].kind == ">"), len(words))
        inner = words[angle + 1 : close]
        route = None
        if inner and inner[0].kind == "@":
            colon = next((i for i, t in enumerate(inner) if t.kind == ":"), -1)
            if colon >= 0:
                route, inner = _glue(inner[:colon]), inner[colon + 1 :]
        local, domain = _addr_spec(inner)
        return Mailbox(_phrase(words[:angle]) or None, route, local, domain)
    # No angle brackets: the addr-spec is the run of glued tokens around the last "@";
    # words before it ("John Smith jsmith@host", broken but common) become the name.
    at = max((i for i, t in enumerate(words) if t.kind == "@"), default=len(words) - 1)
    start = at
    while start > 0 and (not words[start].space or words[start].kind == "." or words[start - 1].kind == "."):
        start -= 1
    local, domain = _addr_spec(words[start:])
    comments = [t.value for t in chunk if t.kind == "comment" and t.value]
    name = _phrase(words[:start]) or (comments[-1] if comments else None)
    return Mailbox(name, None, local, domain)


def _chunk(tokens: list[_Token], pos: int, in_group: bool) -> tuple[list[_Token], int]:
    """Tokens up to the next "," outside angle brackets (or ";" closing a group)."""
    depth = 0
    start = pos
    while pos < len(tokens):
        kind = tokens[pos].kind
        if kind == "<":
            depth = 1
        elif kind == ">":
            depth = 0
        elif depth == 0 and (kind == "," or (in_group and kind == ";")):
            break
        pos += 1
    return tokens[start:pos], pos


def _is_group(tokens: list[_Token], pos: int) -> int:
    """Offset of the ":" that opens a group starting at ``pos``, or -1."""
    while pos < len(tokens):
        kind = tokens[pos].kind
        if kind == ":":
            return pos
        if kind in "<@,;":
            return -1
        pos += 1
    return -1


def parse_addresses(text: str) -> list[Mailbox | Group]:
    """Parse an address-list (RFC 5322 §3.4, §4.4) into mailboxes and groups, leniently."""
    tokens = _tokenize(text)
    items: list[Mailbox | Group] = []
    pos = 0
    while pos < len(tokens):
        if tokens[pos].kind in ",;":
            pos += 1
            continue
        colon = _is_group(tokens, pos)
        if colon >= 0:
            name = _phrase(tokens[pos:colon])
            members: list[Mailbox] = []
            pos = colon + 1
            while pos < len(tokens) and tokens[pos].kind != ";":
                chunk, pos = _chunk(tokens, pos, in_group=True)
                member = _mailbox(chunk)
                if member is not None:
                    members.append(member)
                if pos < len(tokens) and tokens[pos].kind == ",":
                    pos += 1
            items.append(Group(name, tuple(members)))
            pos += 1
            continue
        chunk, pos = _chunk(tokens, pos, in_group=False)
        mailbox = _mailbox(chunk)
        if mailbox is not None:
            items.append(mailbox)
    return items
