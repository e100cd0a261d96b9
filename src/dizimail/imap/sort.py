"""SORT and THREAD (RFC 5256; DISPLAYFROM/DISPLAYTO from RFC 5957).

Comparisons use i;ascii-casemap (ASCII upper-cased), as RFC 5256 §3 requires.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from dizimail.codec.mime.address import Group, Mailbox, parse_addresses
from dizimail.codec.mime.text import header_text

if TYPE_CHECKING:
    from dizimail.imap.base import SessionBase

_BLOB = r"\[[^\[\]]*\]\s*"
_REFWD = re.compile(rf"^(?:{_BLOB})*(?:re|fwd?)\s*(?:{_BLOB})?:\s*", re.IGNORECASE)
_BLOB_PREFIX = re.compile(rf"^{_BLOB}")
_TRAILER = re.compile(r"(?:\s*\(fwd\)|\s+)$", re.IGNORECASE)
_MSGID = re.compile(r"<[^<>\s]+>")


def _casemap(text: str) -> str:
    return "".join(c.upper() if "a" <= c <= "z" else c for c in text)


def base_subject(subject: str) -> tuple[str, bool]:
    """RFC 5256 §2.1: the base subject, and whether the subject marked a reply or forward."""
    s = " ".join(subject.split())
    reply = False
    while True:
        while (m := _TRAILER.search(s)) is not None and m.group():  # step 2
            reply = reply or "(" in m.group()
            s = s[: m.start()]
        while True:  # steps 3 to 5
            before = s
            s = s.lstrip()
            while (m := _REFWD.match(s)) is not None:
                s, reply = s[m.end():], True
            m = _BLOB_PREFIX.match(s)
            if m is not None and s[m.end():].strip():
                s = s[m.end():]
            if s == before:
                break
        if s[:5].lower() == "[fwd:" and s.endswith("]"):  # step 6
            s, reply = s[5:-1], True
            continue
        return _casemap(s), reply


@dataclass
class Info:
    uid: int
    seq: int
    arrival: float
    date: float
    size: int
    subject: str
    reply: bool
    from_: str
    to: str
    cc: str
    display_from: str
    display_to: str
    message_id: str
    references: list[str] = field(default_factory=list)


def _first(values: list[str], display: bool) -> str:
    """The first addr-mailbox (a group's name for group syntax), or for DISPLAY keys the first
    display name falling back to the address (RFC 5256 §3, RFC 5957 §3)."""
    items = parse_addresses(values[0]) if values else []
    if not items:
        return ""
    first = items[0]
    if isinstance(first, Group):
        return _casemap(first.name)
    assert isinstance(first, Mailbox)
    if display and first.name:
        return _casemap(first.name)
    if display:
        return _casemap(f"{first.local or ''}@{first.domain or ''}")
    return _casemap(first.local or "")


async def infos(session: SessionBase, uids: list[int]) -> list[Info]:
    view = session.selected
    assert view is not None
    out = []
    for uid in uids:
        entry = view.entries[uid]
        raw = await session.ctx.mailstore.read_message(entry)
        h = header_text(raw[: raw.find(b"\r\n\r\n") + 4] if b"\r\n\r\n" in raw else raw)
        try:
            date = parsedate_to_datetime(h["date"][0]).timestamp() if h.get("date") else entry.internal_date
        except (TypeError, ValueError, IndexError):
            date = entry.internal_date
        refs = _MSGID.findall(" ".join(h.get("references", [])))
        if not refs:
            refs = _MSGID.findall(" ".join(h.get("in-reply-to", [])))[:1]
        ids = _MSGID.findall(" ".join(h.get("message-id", [])))
        subject, reply = base_subject(h.get("subject", [""])[0])
        out.append(Info(uid, view.seq_of(uid) or 0, entry.internal_date, date, entry.size, subject, reply,
                        _first(h.get("from", []), False), _first(h.get("to", []), False),
                        _first(h.get("cc", []), False), _first(h.get("from", []), True),
                        _first(h.get("to", []), True), ids[0] if ids else "", refs))
    return out


KEYS: dict[str, Callable[[Info], object]] = {
    "ARRIVAL": lambda i: i.arrival, "DATE": lambda i: i.date, "SIZE": lambda i: i.size,
    "SUBJECT": lambda i: i.subject, "FROM": lambda i: i.from_, "TO": lambda i: i.to, "CC": lambda i: i.cc,
    "DISPLAYFROM": lambda i: i.display_from, "DISPLAYTO": lambda i: i.display_to}


def order(criteria: tuple[tuple[bool, str], ...], items: list[Info]) -> list[Info]:
    """``items`` in SORT order; ties in message sequence order, which is UID order (RFC 5256 §3)."""
    items = sorted(items, key=lambda i: i.uid)
    for reverse, name in reversed(criteria):
        items.sort(key=KEYS[name.upper()], reverse=reverse)  # type: ignore[arg-type]
    return items


async def sort_uids(session: SessionBase, criteria: tuple[tuple[bool, str], ...], uids: list[int]) -> list[int]:
    return [i.uid for i in order(criteria, await infos(session, uids))]


# --- THREAD -------------------------------------------------------------------------------


class Node:
    __slots__ = ("children", "info", "parent")

    def __init__(self) -> None:
        self.info: Info | None = None
        self.parent: Node | None = None
        self.children: list[Node] = []

    def adopt(self, child: Node) -> None:
        if child.parent is not None:
            child.parent.children.remove(child)
        child.parent = self
        self.children.append(child)

    def reaches(self, other: Node) -> bool:
        """Whether ``other`` is this node or one of its descendants."""
        stack = [self]
        while stack:
            node = stack.pop()
            if node is other:
                return True
            stack.extend(node.children)
        return False

    def date(self) -> tuple[float, int]:
        """Sent date, then message number: siblings and roots in a stable order (RFC 5256 §2.2)."""
        if self.info is not None:
            return (self.info.date, self.info.seq)
        return min((c.date() for c in self.children), default=(0.0, 0))

    def first_info(self) -> Info | None:
        if self.info is not None:
            return self.info
        kids = sorted(self.children, key=Node.date)
        return kids[0].first_info() if kids else None


def _references(items: list[Info]) -> list[Node]:
    """RFC 5256 §2.2 steps 1 to 5."""
    table: dict[str, Node] = {}

    def node_for(msgid: str) -> Node:
        return table.setdefault(msgid, Node())

    for info in items:  # step 1
        msgid = info.message_id
        node = table.get(msgid) if msgid else None
        if node is None or node.info is not None:  # absent, or a duplicate Message-ID: a unique node
            node = Node()
            if msgid and msgid not in table:
                table[msgid] = node
            else:
                table[f"<dizimail-{info.uid}>"] = node
        node.info = info
        previous: Node | None = None
        for ref in info.references:  # 1B: link the references in order
            current = node_for(ref)
            if previous is not None and current.parent is None and not current.reaches(previous):
                previous.adopt(current)
            previous = current
        if node.parent is not None:  # 1C: the message's own References win over guesses
            node.parent.children.remove(node)
            node.parent = None
        if previous is not None and not node.reaches(previous):
            previous.adopt(node)
    roots = [n for n in set(table.values()) if n.parent is None]  # step 2
    roots = _prune(roots, is_root=True)  # step 3
    roots.sort(key=Node.date)  # step 4
    by_subject: dict[str, Node] = {}  # step 5
    for root in roots:
        head = root.first_info()
        if head is None or not head.subject:
            continue
        other = by_subject.get(head.subject)
        if other is None or (root.info is None and other.info is not None) or (
                other.info is not None and other.info.reply and root.info is not None and not root.info.reply):
            by_subject[head.subject] = root
    merged: list[Node] = []
    for root in roots:
        first = root.first_info()
        subject = first.subject if first is not None else ""
        target = by_subject.get(subject) if subject else None
        if target is None or target is root:
            merged.append(root)
            continue
        if target.info is None and root.info is None:
            for child in list(root.children):
                target.adopt(child)
        elif target.info is None:
            target.adopt(root)
        elif root.info is not None and root.info.reply and not target.info.reply:
            target.adopt(root)
        else:
            dummy = Node()
            index = merged.index(target) if target in merged else None
            dummy.adopt(target)
            dummy.adopt(root)
            if index is not None:
                merged[index] = dummy
            by_subject[subject] = dummy
    return merged


def _prune(nodes: list[Node], is_root: bool) -> list[Node]:
    """Drop empty dummies; promote a dummy's children (at the root only when there is one child)."""
    out: list[Node] = []
    for node in nodes:
        node.children = _prune(node.children, is_root=False)
        for child in node.children:
            child.parent = node
        if node.info is None:
            if not node.children:
                continue
            if not is_root or len(node.children) == 1:
                for child in node.children:
                    child.parent = None
                out.extend(node.children)
                continue
        out.append(node)
    return out


def _render(node: Node, number: Callable[[Info], int]) -> str:
    """thread-members / thread-nested (RFC 5256 §4), without the enclosing parentheses."""
    kids = sorted(node.children, key=Node.date)
    head = str(number(node.info)) if node.info is not None else ""
    if not kids:
        return head
    if len(kids) == 1 and node.info is not None:
        return f"{head} {_render(kids[0], number)}"
    nested = "".join(f"({_render(k, number)})" for k in kids)
    return f"{head} {nested}" if head else nested


async def thread(session: SessionBase, algorithm: str, uids: list[int], use_uid: bool) -> str:
    items = await infos(session, uids)

    def number(i: Info) -> int:
        return i.uid if use_uid else i.seq

    if algorithm.upper() == "ORDEREDSUBJECT":
        groups: dict[str, list[Info]] = {}
        for i in sorted(items, key=lambda i: (i.date, i.seq)):
            groups.setdefault(i.subject, []).append(i)
        out = []
        for group in sorted(groups.values(), key=lambda g: (g[0].date, g[0].seq)):
            head = Node()  # the first message is the parent of the others (RFC 5256 §2.1)
            head.info = group[0]
            for info in group[1:]:
                child = Node()
                child.info = info
                head.adopt(child)
            out.append(f"({_render(head, number)})")
        return "".join(out)
    roots = sorted(_references(items), key=Node.date)
    return "".join(f"({_render(r, number)})" for r in roots)
