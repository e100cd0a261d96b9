"""THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 §3, §2.2) over stored sort keys.

Pure functions of the messages' keys, run in a thread for large mailboxes. Message-IDs and
References are attacker-controlled, so nothing here recurses (a chain of thousands of references
is as deep as it is long) and no step is quadratic in the common case: children are kept in
insertion-ordered dicts (unlinking is O(1)), a link is checked for loops by walking up from the new
parent (only when the child already has children: a fresh container cannot close a loop), and
every traversal uses an explicit stack. Two bounds keep hostile References linear: the loop check
walks up at most MAX_ANCESTORS containers (a deeper chain counts as a loop and is not linked: a
hundred references a message made chains 99 deep per message, and walking them whole was quadratic),
and pruning visits each dummy once instead of copying its children up every level of a dummy chain.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from dizimail.model.types import MessageKeys

MAX_ANCESTORS = 256


@dataclass(eq=False, slots=True)
class ThreadNode:
    """One message of a thread (``uid``), or a dummy standing for a missing parent (``uid`` None);
    children in thread order."""

    uid: int | None
    children: list[ThreadNode] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class _Box:
    """A container of RFC 5256 §2.2 step 1 while linking."""

    item: MessageKeys | None = None
    parent: _Box | None = None
    kids: dict[_Box, None] = field(default_factory=dict)

    def unlink(self) -> None:
        if self.parent is not None:
            del self.parent.kids[self]
            self.parent = None

    def link(self, child: _Box) -> None:
        child.unlink()
        child.parent = self
        self.kids[child] = None

    def above(self, other: _Box) -> bool:
        """Whether ``self`` is ``other`` or one of its ancestors (linking ``other`` under ``self`` would
        loop); also when ``other`` has more than MAX_ANCESTORS ancestors (not linking never loops)."""
        node: _Box | None = other
        for _ in range(MAX_ANCESTORS + 1):
            if node is None:
                return False
            if node is self:
                return True
            node = node.parent
        return True


def _date(item: MessageKeys) -> tuple[float, int]:
    """The sent date (the internal date when the Date field did not parse), then the message number."""
    sent = item.keys.sent if item.keys is not None else None
    return (item.internal_date if sent is None else sent, item.uid)


def _subject(item: MessageKeys) -> str:
    return item.keys.subject if item.keys is not None else ""


def _reply(item: MessageKeys) -> bool:
    return item.keys is not None and item.keys.reply


def ordered_subject(items: Iterable[MessageKeys]) -> list[ThreadNode]:
    """THREAD=ORDEREDSUBJECT (RFC 5256 §3): messages grouped by base subject in sent-date order, the
    first of each group the parent of the others; groups by the date of their first message."""
    groups: dict[str, list[MessageKeys]] = {}
    for item in sorted(items, key=_date):
        groups.setdefault(_subject(item), []).append(item)
    threads = sorted(groups.values(), key=lambda g: _date(g[0]))
    return [ThreadNode(g[0].uid, [ThreadNode(i.uid) for i in g[1:]]) for g in threads]


def references(items: Iterable[MessageKeys]) -> list[ThreadNode]:
    """THREAD=REFERENCES (RFC 5256 §2.2, steps 1 to 6); ``items`` in UID order."""
    items = list(items)
    order = _Order({item.uid: item for item in items})
    roots = _gather(sorted(_prune(_link(items)), key=order.date), order)
    stack = list(roots)  # step 6: every level in date order
    while stack:
        node = stack.pop()
        node.children.sort(key=order.date)
        stack.extend(node.children)
    return sorted(roots, key=order.date)


class _Order:
    """Dates and subjects of nodes; a dummy's are those of its earliest child (step 4)."""

    def __init__(self, items: dict[int, MessageKeys]) -> None:
        self.items = items

    def head(self, node: ThreadNode) -> MessageKeys | None:
        if node.uid is not None:
            return self.items[node.uid]
        kids = [self.items[c.uid] for c in node.children if c.uid is not None]
        return min(kids, key=_date) if kids else None

    def date(self, node: ThreadNode) -> tuple[float, int]:
        head = self.head(node)
        return _date(head) if head is not None else (0.0, 0)

    def subject(self, node: ThreadNode) -> str:
        head = self.head(node)
        return _subject(head) if head is not None else ""

    def reply(self, node: ThreadNode) -> bool:
        return node.uid is not None and _reply(self.items[node.uid])


def _link(items: list[MessageKeys]) -> list[_Box]:
    """Steps 1 and 2: containers linked by References; the roots."""
    table: dict[str, _Box] = {}
    boxes: list[_Box] = []
    for item in items:
        keys = item.keys
        msgid = keys.message_id if keys is not None else ""
        box = table.get(msgid) if msgid else None
        if box is None or box.item is not None:  # no id, or a duplicate: a container of its own
            box = _Box()
            boxes.append(box)
            if msgid and msgid not in table:
                table[msgid] = box
        box.item = item
        previous: _Box | None = None
        for ref in keys.references if keys is not None else ():  # 1B: link the references in order
            current = table.get(ref)
            if current is None:
                current = table[ref] = _Box()
                boxes.append(current)
            if (previous is not None and current.parent is None and current is not previous
                    and not (current.kids and current.above(previous))):
                previous.link(current)
            previous = current
        box.unlink()  # 1C: the message's own last reference wins over a link another message made
        if previous is not None and previous is not box and not (box.kids and box.above(previous)):
            previous.link(box)
    return [b for b in boxes if b.parent is None]


def _prune(roots: list[_Box]) -> list[ThreadNode]:
    """Step 3: empty dummies go, a dummy's children take its place (at the root only if it has one)."""
    order: list[_Box] = []
    stack = list(roots)
    while stack:
        box = stack.pop()
        order.append(box)
        stack.extend(box.kids)
    nodes: dict[_Box, ThreadNode] = {}

    def spliced(box: _Box) -> list[ThreadNode]:
        """``box``'s children with every dummy among its descendants replaced by its own children, in
        order (an empty dummy vanishes, a full one is spliced in); each dummy is walked once, by the
        nearest message above it."""
        children: list[ThreadNode] = []
        pending = [iter(box.kids)]
        while pending:
            kid = next(pending[-1], None)
            if kid is None:
                pending.pop()
            elif kid.item is None:
                pending.append(iter(kid.kids))
            else:
                children.append(nodes.pop(kid))
        return children

    for box in reversed(order):  # each message after all of its descendants
        if box.item is not None:
            nodes[box] = ThreadNode(box.item.uid, spliced(box))
    top: list[ThreadNode] = []
    for box in roots:
        if box.item is not None:
            top.append(nodes.pop(box))
            continue
        children = spliced(box)
        if len(children) <= 1:
            top.extend(children)
        else:
            top.append(ThreadNode(None, children))
    return top


def _gather(roots: list[ThreadNode], order: _Order) -> list[ThreadNode]:
    """Step 5: roots (in date order) with the same base subject gathered under one."""
    table: dict[str, ThreadNode] = {}
    for root in roots:  # 5B: which root each subject gathers under
        subject = order.subject(root)
        if not subject:
            continue
        other = table.get(subject)
        if other is None or (root.uid is None and other.uid is not None) or (
                order.reply(other) and root.uid is not None and not order.reply(root)):
            table[subject] = root
    merged: list[ThreadNode] = []
    place: dict[ThreadNode, int] = {}
    for root in roots:  # 5C
        subject = order.subject(root)
        target = table.get(subject) if subject else None
        if target is None or target is root:
            place[root] = len(merged)
            merged.append(root)
        elif target.uid is None and root.uid is None:
            target.children.extend(root.children)
        elif target.uid is None or (order.reply(root) and not order.reply(target)):
            target.children.append(root)
        else:  # both messages, neither gathers the other: a new dummy holds both
            dummy = ThreadNode(None, [target, root])
            table[subject] = dummy
            merged[place[target]] = dummy
            place[dummy] = place.pop(target)
    return merged
