"""Search and sort results kept up to date (RFC 5267 §4.3, CONTEXT=SEARCH and CONTEXT=SORT).

A SEARCH or SORT with ``RETURN (UPDATE)`` leaves a context behind: the result, as UIDs in the
requested order. After every change the session reports (its own STORE and FETCH included), the
contexts are re-evaluated and the difference goes out as unsolicited ``ESEARCH ... ADDTO`` /
``REMOVEFROM``. Two orderings matter (RFC 5267 §4.3.3, §4.3.4): an ADDTO for new messages follows
their EXISTS, and a REMOVEFROM for expunged messages precedes their EXPUNGE, so the numbers in
both are valid when the client reads them. SEARCH contexts use context position 0 and sets in
mailbox order; SORT contexts name real positions, so the client can keep its sorted list.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dizimail.codec.imap.searchkeys import SearchKey
from dizimail.codec.imap.writer import ordered_set_string, sequence_set_string
from dizimail.services.search import SearchTooComplex

if TYPE_CHECKING:
    from dizimail.imap.base import SessionBase
    from dizimail.services.selected import SelectedMailbox

MAX_CONTEXTS = 16  # "MUST provide at least one updating context per client" (RFC 5267 §4.3.1)


@dataclass
class Context:
    tag: str
    uid: bool
    key: SearchKey
    charset: str | None
    criteria: tuple[tuple[bool, str], ...] | None  # None: a SEARCH context
    result: list[int]  # UIDs, in the requested order
    seen: tuple[int, int, int, int] = (0, 0, 0, 0)  # the view's fingerprint when last evaluated


def fingerprint(view: SelectedMailbox) -> tuple[int, int, int, int]:
    """Changes whenever messages arrive, leave or change flags: MODSEQs only grow (RFC 7162)."""
    return (view.exists, view.uids[-1] if view.uids else 0, view.synced_modseq, len(view.pending_expunge))


class Contexts:
    """The live update contexts of one session, all on the mailbox selected when they began."""

    def __init__(self) -> None:
        self.live: dict[str, Context] = {}
        self.view: SelectedMailbox | None = None

    def active(self, session: SessionBase) -> bool:
        """Updates cease when the mailbox is no longer selected (RFC 5267 §4.3)."""
        if self.live and session.selected is not self.view:
            self.live.clear()
        return bool(self.live)

    def add(self, session: SessionBase, context: Context) -> bool:
        """Keep ``context`` updated; False when the limit is reached (the caller says NOUPDATE)."""
        self.active(session)
        if len(self.live) >= MAX_CONTEXTS:
            return False
        assert session.selected is not None
        self.view = session.selected
        context.seen = fingerprint(session.selected)
        self.live[context.tag] = context
        return True

    def cancel(self, tags: tuple[str, ...]) -> list[str]:
        """CANCELUPDATE (RFC 5267 §4.3.5); returns the tags that named no context."""
        unknown = [t for t in tags if t not in self.live]
        for tag in tags:
            self.live.pop(tag, None)
        return unknown

    def before_expunge(self, session: SessionBase, expunged_uids: list[int]) -> None:
        """REMOVEFROM for messages about to be announced as expunged, numbered as the client
        still numbers them (``session.selected`` no longer holds them; RFC 5267 §4.3.4)."""
        if not expunged_uids or not self.active(session):
            return
        view = session.selected
        assert view is not None
        gone = sorted(expunged_uids)
        goneset = set(gone)

        def old_seq(uid: int) -> int:
            return bisect.bisect_left(view.uids, uid) + bisect.bisect_left(gone, uid) + 1

        for context in self.live.values():
            if not goneset.intersection(context.result):
                continue
            removed = [(i, u) for i, u in enumerate(context.result, 1) if u in goneset]
            context.result = [u for u in context.result if u not in goneset]
            _send(session, context, "REMOVEFROM",
                  _runs(context, [(i, u if context.uid else old_seq(u)) for i, u in removed], descending=True))

    async def refresh(self, session: SessionBase) -> None:
        """Re-evaluate the contexts whose mailbox changed and tell the client the difference."""
        if not self.active(session):
            return
        view = session.selected
        assert view is not None
        now = fingerprint(view)
        for context in list(self.live.values()):
            if context.seen == now:
                continue
            context.seen = now
            await self._refresh(session, view, context)

    async def _refresh(self, session: SessionBase, view: SelectedMailbox, context: Context) -> None:
        store = session.ctx.mailstore
        try:
            matching = await store.search(view, context.key, session.saved)
        except SearchTooComplex:  # accepted when it began: the limit cannot have changed
            return
        new_set = set(matching)
        old = context.result
        new = matching if context.criteria is None else await store.sort(view, context.criteria, matching)
        context.result = new
        old_set = set(old)
        removed = [(i, u) for i, u in enumerate(old, 1) if u not in new_set]
        added_at = [(i, u) for i, u in enumerate(new, 1) if u not in old_set]

        def number(uid: int) -> int | None:
            return uid if context.uid else view.seq_of(uid)

        _send(session, context, "REMOVEFROM",
              _runs(context, [(i, n) for i, u in removed if (n := number(u)) is not None], descending=True))
        _send(session, context, "ADDTO",
              _runs(context, [(i, n) for i, u in added_at if (n := number(u)) is not None], descending=False))


def _runs(context: Context, items: list[tuple[int, int]], descending: bool) -> list[tuple[int, list[int]]]:
    """(context position, numbers) pairs. A SEARCH context sends one pair at position 0 in
    mailbox order; a SORT context one pair per run of adjacent positions, removals from the end
    so that each position is still right when the client applies it (RFC 5267 §4.3.2)."""
    if not items:
        return []
    if context.criteria is None:
        return [(0, sorted(n for _i, n in items))]
    runs: list[tuple[int, list[int]]] = []
    for position, n in items:
        if runs and runs[-1][0] + len(runs[-1][1]) == position:
            runs[-1][1].append(n)
        else:
            runs.append((position, [n]))
    return runs[::-1] if descending else runs


def _send(session: SessionBase, context: Context, verb: str, runs: list[tuple[int, list[int]]]) -> None:
    if not runs:
        return
    render = sequence_set_string if context.criteria is None else ordered_set_string
    pairs = " ".join(f"{position} {render(numbers)}" for position, numbers in runs)
    session.untagged(f'ESEARCH (TAG "{context.tag}"){" UID" if context.uid else ""} {verb} ({pairs})')

