"""A session's view of one selected mailbox (RFC 3501 §2.3.1, §7.4.1; RFC 7162).

The view maps message sequence numbers to UIDs: it holds the mailbox's UIDs in order, four
bytes each, and nothing else per message. Flags, MODSEQs and the rest of a message's row are
read from the store for the command in progress, a batch at a time (``rows``): SELECT of a
mailbox of 100,000 messages reads no rows, and FETCH 1:* streams in bounded memory. The rows
of the batch in progress are the *window* (``entries``, ``flags``, ``modseqs``); nothing
outside it is known, and it never outlives the command that loaded it. A small mailbox (up to
KEEP_ROWS messages) is the exception: the first command that walks it loads every row once and
the view keeps them (``complete``), updated by ``poll`` and by the session's own STOREs, so the
commands that follow read no rows at all.

``poll`` asks the store what changed since the MODSEQ the view last saw; expunges are held
back until the front-end may announce them (never during FETCH, STORE or SEARCH), so a
client's sequence numbers never shift behind its back. Until then the store still returns an
expunged message's row as it was (RFC 2180 §4.1.1), for the blob grace period.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from dizimail.interfaces import MetaStore
from dizimail.model.errors import InvalidInput
from dizimail.model.types import FlagChange, MailboxChanges, MailboxInfo, MailboxStatus, MessageEntry

BATCH = 1000  # rows read per store call while a command walks the mailbox
KEEP_ROWS = 2000  # a view of up to this many messages keeps all its rows between commands
SYSTEM_FLAGS = {f.lower(): f for f in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")}
_ATOM_SPECIALS = set('(){ %*"\\]') | {chr(c) for c in range(0x20)} | {"\x7f"}
MAX_KEYWORDS = 100


def normalize_flags(flags: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Canonical system flags, keywords as atoms; \\Recent is not settable (RFC 3501 §2.3.2)."""
    out: list[str] = []
    for flag in flags:
        if flag.startswith("\\"):
            canonical = SYSTEM_FLAGS.get(flag.lower())
            if canonical is None:
                if flag.lower() == "\\recent":
                    continue
                raise InvalidInput("bad_flag", flag)
            flag = canonical
        elif not flag or len(flag) > 100 or any(c in _ATOM_SPECIALS for c in flag):
            raise InvalidInput("bad_flag", flag)
        if flag not in out:
            out.append(flag)
    if len(out) > MAX_KEYWORDS:
        raise InvalidInput("too_many_flags", str(len(out)))
    return tuple(out)


@dataclass
class Update:
    """What the client must be told: expunged sequence numbers (in the order to send them),
    the new EXISTS count (if it grew), and flag changes as (seq, uid, flags, modseq)."""

    expunged: list[int] = field(default_factory=list)
    expunged_uids: list[int] = field(default_factory=list)
    exists: int | None = None
    recent: int | None = None
    keywords: list[str] | None = None  # the new FLAGS list when a keyword appeared
    flags: list[tuple[int, int, tuple[str, ...], int]] = field(default_factory=list)


class RecentUids:
    """The UIDs that are \\Recent in this session (RFC 3501 §2.3.2): the UID ranges it claimed."""

    def __init__(self) -> None:
        self.ranges: list[tuple[int, int]] = []

    def add(self, first: int, end: int) -> None:
        if first >= end:
            return
        if self.ranges and self.ranges[-1][1] == first:
            self.ranges[-1] = (self.ranges[-1][0], end)
        else:
            self.ranges.append((first, end))

    def __contains__(self, uid: int) -> bool:
        for lo, hi in self.ranges:
            if lo <= uid < hi:
                return True
        return False

    def meets(self, first: int, last: int) -> bool:
        """Whether some UID in ``first..last`` is recent."""
        return any(lo <= last and first < hi for lo, hi in self.ranges)

    def count(self, uids: Sequence[int]) -> int:
        """How many of ascending ``uids`` are recent."""
        return sum(bisect.bisect_left(uids, hi) - bisect.bisect_left(uids, lo) for lo, hi in self.ranges)


class SelectedMailbox:
    def __init__(self, meta: MetaStore, info: MailboxInfo, readonly: bool) -> None:
        self.meta = meta
        self.info = info
        self.readonly = readonly
        self.uids: array[int] = array("I")  # ascending; sequence number n is uids[n - 1]
        self.generation = 0  # moves whenever ``uids`` changes (what the session's resolved sets depend on)
        self.recent = RecentUids()
        self.pending_expunge: set[int] = set()
        self.keywords: set[str] = set()
        self.first_unseen: int | None = None  # sequence number, as of SELECT
        self.synced_modseq = 0
        self.uidnext = 1
        # The window: rows loaded for the command in progress.
        self.entries: dict[int, MessageEntry] = {}
        self.flags: dict[int, tuple[str, ...]] = {}
        self.modseqs: dict[int, int] = {}
        self.complete = False  # the window holds every message of the view, kept up to date
        self._told: dict[int, int] = {}  # our own STOREs: UID -> MODSEQ the client already heard
        self.counts: MailboxStatus | None = None  # the STATUS counters as of the last snapshot or poll

    async def open(self) -> None:
        """Read the UIDs and counters in one snapshot; claim the \\Recent messages (SELECT) or just
        show them (EXAMINE). A message arriving after the snapshot is reported by the first poll.

        The claim (a write) follows the snapshot when it shows something to claim: the claimed UID
        range covers the snapshot's recent messages and any that arrived since (the first poll
        reports those). Nothing to claim, nothing written: the common SELECT is one read."""
        snap = await self.meta.snapshot_mailbox(self.info.id)
        if self.readonly:  # EXAMINE reports recent messages without claiming them
            self.recent.add(snap.recent_from, snap.uidnext)
        elif snap.recent_from < snap.uidnext:
            self.recent.add(*await self.meta.take_recent(self.info.id))
        self.uids = snap.uids
        self.generation += 1
        self.synced_modseq, self.uidnext = snap.highestmodseq, snap.uidnext
        self.keywords = set(snap.keywords)
        self.first_unseen = None if snap.first_unseen is None else self.seq_of(snap.first_unseen)
        self.counts = snap.status

    def status(self) -> MailboxStatus | None:
        """STATUS of this mailbox as the session last synchronised with it (SELECT, or the poll that
        follows most commands), RECENT being the session's own, as Dovecot answers it: RFC 9051
        §6.3.11 makes STATUS no way to look for new mail in the selected mailbox, and the answer
        costs no read. None when the counters are unknown."""
        c = self.counts
        if c is None:
            return None
        return MailboxStatus(c.messages, c.unseen, self.recent_count(), c.deleted, c.size, c.uidnext,
                             c.uidvalidity, c.highestmodseq, c.recent_from)

    @property
    def exists(self) -> int:
        return len(self.uids)

    def has(self, uid: int) -> bool:
        return self.seq_of(uid) is not None

    def seq_of(self, uid: int) -> int | None:
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    def seqs_of(self, entries: Sequence[MessageEntry]) -> list[int]:
        """The sequence numbers of ``entries`` (ascending by UID), 0 for those not in the view: one
        call for a batch of a FETCH instead of one per message."""
        uids, n, lo, out = self.uids, len(self.uids), 0, []
        for e in entries:
            lo = bisect.bisect_left(uids, e.uid, lo)
            out.append(lo + 1 if lo < n and uids[lo] == e.uid else 0)
        return out

    def uids_in(self, spans: Sequence[tuple[int, int]], by_uid: bool) -> array[int]:
        """The view's UIDs within ascending, disjoint ``spans`` of UIDs or of sequence numbers."""
        out: array[int] = array("I")
        uids = self.uids
        for lo, hi in spans:
            if by_uid and lo == hi:  # a list page names its 50 messages one by one
                i = bisect.bisect_left(uids, lo)
                if i < len(uids) and uids[i] == lo:
                    out.append(lo)
            elif by_uid:
                out.extend(uids[bisect.bisect_left(uids, lo):bisect.bisect_right(uids, hi)])
            else:
                out.extend(self.uids[lo - 1:hi])
        return out

    def recent_count(self) -> int:
        return self.recent.count(self.uids)

    def flags_of(self, uid: int, flags: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """``flags`` (by default the window's) with \\Recent added when the message is recent here."""
        if flags is None:
            flags = self.flags.get(uid, ())
        return flags + ("\\Recent",) if uid in self.recent else flags

    # --- rows, a batch at a time -------------------------------------------------------
    async def rows(self, uids: Sequence[int], batch: int = BATCH) -> AsyncIterator[list[MessageEntry]]:
        """The rows of ascending ``uids`` (messages in the view), a batch at a time; each batch
        becomes the window. A message whose row is gone for good (expunged longer ago than the
        blob grace period) is left out."""
        if not self.complete and 0 < self.exists <= KEEP_ROWS:
            self.set_window(await self.meta.message_rows(self.info.id, self.uids))
            self.complete = True
        if self.complete:
            for start in range(0, len(uids), batch):
                yield [e for u in uids[start:start + batch] if (e := self.entries.get(u)) is not None]
            return
        for start in range(0, len(uids), batch):
            entries = await self.meta.message_rows(self.info.id, uids[start:start + batch])
            self.set_window(entries)
            yield entries

    async def load(self, uids: Sequence[int]) -> dict[int, MessageEntry]:
        """All the rows of ``uids`` as the window (for a few messages, or a search result)."""
        entries: list[MessageEntry] = []
        async for batch in self.rows(uids):
            entries += batch
        self.set_window(entries)
        return self.entries

    def set_window(self, entries: Sequence[MessageEntry]) -> None:
        """The rows the command in progress reads next (a view that keeps all its rows has them already)."""
        if self.complete:
            return
        self.entries = {e.uid: e for e in entries}
        self.flags = {e.uid: e.flags for e in entries}
        self.modseqs = {e.uid: e.modseq for e in entries}

    async def deleted(self) -> list[int]:
        """UIDs in the view flagged \\Deleted now (EXPUNGE, CLOSE)."""
        return [u for u in await self.meta.deleted_uids(self.info.id) if self.has(u)]

    # --- changes -------------------------------------------------------------------------
    async def poll(self, allow_expunge: bool) -> Update:
        """Fetch what changed since the last poll and fold it into the view.

        Expunges are applied first (when allowed), so the sequence numbers of the flag updates
        that follow are already the new ones (RFC 3501 §7.4.1)."""
        changes = await self.meta.mailbox_changes(self.info.id, self.synced_modseq, self.uidnext)
        update = Update()
        self.synced_modseq = max(self.synced_modseq, changes.highestmodseq)
        self.counts = changes.status
        self.pending_expunge.update(u for u in changes.expunged if self.has(u))
        if allow_expunge and self.pending_expunge:
            update.expunged, update.expunged_uids = self._apply_expunges()
        for change in changes.changed:
            if self.complete:
                self._keep(change.uid, change.flags, change.modseq)
            if change.modseq <= self._told.get(change.uid, 0) or change.uid in self.pending_expunge:
                continue
            seq = self.seq_of(change.uid)
            if seq is not None:
                update.flags.append((seq, change.uid, self.flags_of(change.uid, change.flags), change.modseq))
        if self._told:  # what is at or below the synced MODSEQ can never be reported again
            self._told = {u: m for u, m in self._told.items() if m > self.synced_modseq}
        new = [e for e in changes.new if not self.has(e.uid)]
        if new:
            self.generation += 1
            for e in new:
                if self.uids and e.uid < self.uids[-1]:  # never expected: UIDs only grow
                    bisect.insort(self.uids, e.uid)
                else:
                    self.uids.append(e.uid)
                if self.complete:
                    self.entries[e.uid], self.flags[e.uid], self.modseqs[e.uid] = e, e.flags, e.modseq
            if self.complete and self.exists > 2 * KEEP_ROWS:  # grown large: back to windows
                self.complete = False
                self.set_window(())
            if not self.readonly:  # the first session to see new mail gets it as \\Recent
                self.recent.add(*await self.meta.take_recent(self.info.id))
            update.exists = self.exists
            update.recent = self.recent_count()
        self.uidnext = max(self.uidnext, changes.uidnext, *(e.uid + 1 for e in new))
        new_keywords = self.keywords_update([c.flags for c in changes.changed] + [e.flags for e in new])
        if new_keywords:
            update.keywords = new_keywords
        return update

    def resync(self, changes: MailboxChanges) -> tuple[list[int], list[FlagChange]]:
        """What a QRESYNC SELECT reports of ``changes`` (read after the view's snapshot, RFC 7162
        §3.2.5.2): the UIDs gone before the snapshot, and the changes the snapshot reflects.
        Anything later (an expunge of a message still in the view, a MODSEQ above the view's) is
        for the next poll to report against the view's numbering; told now, the client's
        sequence numbers would drift from the view's."""
        vanished = [u for u in changes.expunged if u < self.uidnext and not self.has(u)]
        changed = [c for c in changes.changed if c.modseq <= self.synced_modseq and self.has(c.uid)]
        return vanished, changed

    def keywords_update(self, flag_sets: list[tuple[str, ...]]) -> list[str] | None:
        """The mailbox's keyword list, if ``flag_sets`` (just changed, added or read) brought a new
        one (the client then needs a new FLAGS response before it sees the keyword)."""
        current = {f for flags in flag_sets for f in flags if not f.startswith("\\")}
        if current - self.keywords:
            self.keywords |= current
            return sorted(self.keywords)
        return None

    def _apply_expunges(self) -> tuple[list[int], list[int]]:
        """Drop pending expunges; returns the sequence numbers to announce, highest first, so
        that each stays valid as the previous ones are applied (RFC 3501 §7.4.1)."""
        uids = sorted(self.pending_expunge, reverse=True)
        self.pending_expunge.clear()
        seqs = [seq for seq in (self.seq_of(u) for u in uids) if seq is not None]
        self.generation += 1
        if len(seqs) <= 64:
            for seq in seqs:  # descending, so each index is still valid
                del self.uids[seq - 1]
        else:  # one pass instead of a memmove per message
            gone = set(uids)
            self.uids = array("I", (u for u in self.uids if u not in gone))
        for uid in uids:
            self._told.pop(uid, None)
            if uid in self.entries:
                del self.entries[uid], self.flags[uid], self.modseqs[uid]
        return seqs, sorted(uids)

    def note_flags(self, uid: int, flags: tuple[str, ...], modseq: int) -> None:
        """Our own STORE: the client hears it in the STORE response, not again at the next poll."""
        self._told[uid] = modseq
        self._keep(uid, flags, modseq)

    def _keep(self, uid: int, flags: tuple[str, ...], modseq: int) -> None:
        """A message's new flags into the window (if it holds the message and this is newer)."""
        entry = self.entries.get(uid)
        if entry is not None and modseq >= entry.modseq:
            entry.flags, entry.modseq = flags, modseq
            self.flags[uid], self.modseqs[uid] = flags, modseq
