"""SORT and THREAD (RFC 5256; DISPLAYFROM/DISPLAYTO from RFC 5957)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from dizimail.codec.mime.text import addresses, header_text

if TYPE_CHECKING:
    from dizimail.imap.base import SessionBase

_LEADER = re.compile(r"^(?:\s*(?:re|fwd?)\s*(?:\[[^\]]*\])?\s*:|\s*\[[^\]]*\]\s*(?=.))", re.IGNORECASE)
_TRAILER = re.compile(r"\s*\(fwd\)\s*$", re.IGNORECASE)
_MSGID = re.compile(r"<[^<>\s]+>")


def base_subject(subject: str) -> str:
    """RFC 5256 §2.1: without Re:/Fw:/Fwd:, [blob] prefixes, "(fwd)" trailers and [fwd: ...] wrappers."""
    s = " ".join(subject.split())
    while True:
        before = s
        s = _TRAILER.sub("", s)
        while (m := _LEADER.match(s)) is not None and s[m.end():].strip():
            s = s[m.end():].lstrip()
        if s.lower().startswith("[fwd:") and s.endswith("]"):
            s = s[5:-1].strip()
        if s == before:
            return s.casefold()


@dataclass
class Info:
    uid: int
    seq: int
    arrival: float
    date: float
    size: int
    subject: str
    from_: str
    to: str
    cc: str
    display_from: str
    display_to: str
    message_id: str
    references: list[str] = field(default_factory=list)


def _first(value: list[str], display: bool) -> str:
    pairs = addresses(value[0]) if value else []
    if not pairs:
        return ""
    name, address = pairs[0]
    if display:
        return (name or address).casefold()
    return address.split("@")[0].casefold()


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
        out.append(Info(uid, view.seq_of(uid) or 0, entry.internal_date, date, entry.size,
                        base_subject(h.get("subject", [""])[0]), _first(h.get("from", []), False),
                        _first(h.get("to", []), False), _first(h.get("cc", []), False),
                        _first(h.get("from", []), True), _first(h.get("to", []), True),
                        ids[0] if ids else f"<dizimail-{uid}@local>", refs))
    return out


KEYS = {"ARRIVAL": lambda i: i.arrival, "DATE": lambda i: i.date, "SIZE": lambda i: i.size,
        "SUBJECT": lambda i: i.subject, "FROM": lambda i: i.from_, "TO": lambda i: i.to, "CC": lambda i: i.cc,
        "DISPLAYFROM": lambda i: i.display_from, "DISPLAYTO": lambda i: i.display_to}


async def sort_uids(session: SessionBase, criteria: tuple[tuple[bool, str], ...], uids: list[int]) -> list[int]:
    items = await infos(session, uids)
    items.sort(key=lambda i: i.seq)  # the final tie-breaker (RFC 5256 §3)
    for reverse, name in reversed(criteria):
        items.sort(key=KEYS[name.upper()], reverse=reverse)
    return [i.uid for i in items]


def render(tree: list[object]) -> str:
    """Nested lists of numbers to RFC 5256 thread syntax."""
    out = []
    for node in tree:
        out.append("(" + _chain(node) + ")")
    return "".join(out)


def _chain(node: object) -> str:
    assert isinstance(node, tuple)
    number: int | None = node[0]
    kids: list[object] = node[1]
    head = str(number) if number is not None else ""
    if not kids:
        return head
    if len(kids) == 1:
        return (head + " " if head else "") + _chain(kids[0])
    return (head + " " if head else "") + " ".join("(" + _chain(k) + ")" for k in kids)


async def thread(session: SessionBase, algorithm: str, uids: list[int], use_uid: bool) -> str:
    items = await infos(session, uids)

    def number(i: Info) -> int:
        return i.uid if use_uid else i.seq
    if algorithm.upper() == "ORDEREDSUBJECT":
        groups: dict[str, list[Info]] = {}
        for i in sorted(items, key=lambda i: (i.date, i.seq)):
            groups.setdefault(i.subject, []).append(i)
        tree: list[object] = []
        for group in sorted(groups.values(), key=lambda g: (g[0].date, g[0].seq)):
            tree.append((number(group[0]), [(number(i), []) for i in group[1:]]))
        return render(tree)
    return render(_references(items, number))


def _is_ancestor(candidate: dict[str, object], node: dict[str, object]) -> bool:
    """Whether ``candidate`` is ``node`` or one of its ancestors (linking would make a loop)."""
    seen = 0
    current: dict[str, object] | None = node
    while current is not None and seen < 10_000:
        if current is candidate:
            return True
        current = current["parent"]  # type: ignore[assignment]
        seen += 1
    return False


def _references(items: list[Info], number: Callable[[Info], int]) -> list[object]:
    """RFC 5256 §2.2 REFERENCES, simplified: link by References/In-Reply-To, then merge roots by
    base subject; siblings and roots by sent date."""
    by_id: dict[str, dict[str, object]] = {}

    def container(msgid: str) -> dict[str, object]:
        return by_id.setdefault(msgid, {"info": None, "parent": None, "children": []})

    for info in items:
        c = container(info.message_id)
        if c["info"] is not None:  # duplicate Message-ID: treat as unique
            c = container(f"<dup-{info.uid}>")
        c["info"] = info
        previous = None
        for ref in info.references:
            r = container(ref)
            if previous is not None and r["parent"] is None and r is not previous and not _is_ancestor(r, previous):
                r["parent"] = previous
                previous["children"].append(r)  # type: ignore[attr-defined]
            previous = r
        if previous is not None and previous is not c and not _is_ancestor(c, previous):
            if c["parent"] is not None:
                c["parent"]["children"].remove(c)  # type: ignore[index]
            c["parent"] = previous
            previous["children"].append(c)  # type: ignore[attr-defined]
    roots = [c for c in by_id.values() if c["parent"] is None]

    def date_of(c: dict[str, object]) -> float:
        info = c["info"]
        if info is not None:
            return info.date  # type: ignore[attr-defined,no-any-return]
        kids = c["children"]
        return min((date_of(k) for k in kids), default=0.0)  # type: ignore[attr-defined]

    def build(c: dict[str, object]) -> list[object]:
        kids = sorted(c["children"], key=date_of)  # type: ignore[call-overload]
        built = [n for k in kids for n in build(k)]
        info = c["info"]
        if info is None:  # dummy: promote its children
            return built if len(built) != 1 else built
        return [(number(info), built)]  # type: ignore[arg-type]

    trees = [n for c in sorted(roots, key=date_of) for n in build(c)]
    # roots without a message but with several children become a dummy node
    return trees
