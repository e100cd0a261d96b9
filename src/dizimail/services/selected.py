"""A session's view of one selected mailbox (RFC 3501 §2.3.1, §7.4.1; RFC 7162).

The view maps message sequence numbers to UIDs and keeps the flags the client was told about.
``poll`` asks the store what changed since the MODSEQ the view last saw; expunges are held
back until the front-end may announce them (never during FETCH, STORE or SEARCH), so a
client's sequence numbers never shift behind its back.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from dizimail.interfaces import MetaStore
from dizimail.model.errors import InvalidInput
from dizimail.model.types import MailboxInfo, MessageEntry

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


class SelectedMailbox:
    def __init__(self, meta: MetaStore, info: MailboxInfo, readonly: bool) -> None:
        self.meta = meta
        self.info = info
        self.readonly = readonly
        self.uids: list[int] = []
        self.entries: dict[int, MessageEntry] = {}
        self.flags: dict[int, tuple[str, ...]] = {}
        self.modseqs: dict[int, int] = {}
        self.recent: set[int] = set()
        self.pending_expunge: set[int] = set()
        self.keywords: set[str] = set()
        self.synced_modseq = 0
        self.uidnext = 1

    async def open(self) -> None:
        # The counters come from the mailbox row read before the messages: anything that arrives in
        # between is then both listed and (harmlessly) reported again by the first poll, never lost.
        self.synced_modseq, self.uidnext = self.info.highestmodseq, self.info.uidnext
        self._add(await self.meta.list_messages(self.info.id))
        self.keywords = {f for flags in self.flags.values() for f in flags if not f.startswith("\\")}
        if not self.readonly:
            first_recent, _end = await self.meta.take_recent(self.info.id)
            self.recent = {u for u in self.uids if u >= first_recent}
        else:  # EXAMINE reports recent messages without claiming them
            recent_from = (await self.meta.mailbox_status(self.info.id)).recent_from
            self.recent = {u for u in self.uids if u >= recent_from}

    def _add(self, entries: list[MessageEntry] | tuple[MessageEntry, ...]) -> None:
        for e in entries:
            if e.uid in self.entries:
                continue
            self.uids.append(e.uid)
            self.entries[e.uid] = e
            self.flags[e.uid] = e.flags
            self.modseqs[e.uid] = e.modseq
            self.uidnext = max(self.uidnext, e.uid + 1)

    @property
    def exists(self) -> int:
        return len(self.uids)

    def seq_of(self, uid: int) -> int | None:
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    def uid_of(self, seq: int) -> int:
        return self.uids[seq - 1]

    def flags_of(self, uid: int) -> tuple[str, ...]:
        flags = self.flags.get(uid, ())
        return flags + ("\\Recent",) if uid in self.recent else flags

    async def poll(self, allow_expunge: bool) -> Update:
        """Fetch what changed since the last poll and fold it into the view.

        Expunges are applied first (when allowed), so the sequence numbers of the flag updates
        that follow are already the new ones (RFC 3501 §7.4.1)."""
        changes = await self.meta.mailbox_changes(self.info.id, self.synced_modseq, self.uidnext)
        update = Update()
        self.synced_modseq = max(self.synced_modseq, changes.highestmodseq)
        self.pending_expunge.update(u for u in changes.expunged if u in self.entries)
        if allow_expunge and self.pending_expunge:
            update.expunged, update.expunged_uids = self._apply_expunges()
        for change in changes.changed:
            if change.uid in self.entries and change.modseq > self.modseqs.get(change.uid, 0):
                self.flags[change.uid] = change.flags
                self.modseqs[change.uid] = change.modseq
                if change.uid not in self.pending_expunge:
                    seq = self.seq_of(change.uid)
                    assert seq is not None
                    update.flags.append((seq, change.uid, change.flags, change.modseq))
        new = [e for e in changes.new if e.uid not in self.entries]
        if new:
            self._add(new)
            if not self.readonly:  # the first session to see new mail gets it as \Recent
                first, _end = await self.meta.take_recent(self.info.id)
                self.recent.update(e.uid for e in new if e.uid >= first)
            update.exists = self.exists
            update.recent = len(self.recent)
        self.uidnext = max(self.uidnext, changes.uidnext)
        update.flags = [(seq, uid, self.flags_of(uid), modseq) for seq, uid, _flags, modseq in update.flags]
        new_keywords = self.keywords_update([c.flags for c in changes.changed] + [e.flags for e in new])
        if new_keywords:
            update.keywords = new_keywords
        return update

    def keywords_update(self, flag_sets: list[tuple[str, ...]]) -> list[str] | None:
        """The mailbox's keyword list, if ``flag_sets`` (just changed or added) brought a new one
        (the client then needs a new FLAGS response)."""
        current = {f for flags in flag_sets for f in flags if not f.startswith("\\")}
        if current - self.keywords:
            self.keywords |= current
            return sorted(self.keywords)
        return None

    def _apply_expunges(self) -> tuple[list[int], list[int]]:
        """Drop pending expunges; returns the sequence numbers to announce, highest first, so
        that each stays valid as the previous ones are applied (RFC 3501 §7.4.1)."""
        seqs: list[int] = []
        uids = sorted(self.pending_expunge, reverse=True)
        for uid in uids:
            seq = self.seq_of(uid)
            if seq is None:
                continue
            seqs.append(seq)
            del self.uids[seq - 1]
            self.entries.pop(uid, None)
            self.flags.pop(uid, None)
            self.modseqs.pop(uid, None)
            self.recent.discard(uid)
        self.pending_expunge.clear()
        return seqs, sorted(uids)

    def note_flags(self, uid: int, flags: tuple[str, ...], modseq: int) -> None:
        """Our own STORE: the client hears it in the STORE response, not again at the next poll."""
        self.flags[uid] = flags
        self.modseqs[uid] = modseq
