"""State and output helpers shared by the IMAP session's command groups."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from dizimail.codec.imap.utf7 import decode_mutf7, encode_mutf7
from dizimail.codec.imap.writer import quote, sequence_set_string
from dizimail.imap.contexts import Contexts
from dizimail.model.types import Account
from dizimail.net.connection import Connection
from dizimail.services.notify import Watch
from dizimail.services.selected import SelectedMailbox, Update
from dizimail.util.memo import kept_when_short

if TYPE_CHECKING:
    from dizimail.imap.server import ImapContext


KEEP_RESOLVED = 1000  # UIDs: the largest resolved set a session keeps for the next command

class CommandError(Exception):
    """Answer the command with ``NO``/``BAD`` and an optional response code."""

    def __init__(self, kind: str, text: str, code: str = "") -> None:
        super().__init__(text)
        self.kind, self.text, self.code = kind, text, code


class SessionBase:
    ctx: ImapContext
    conn: Connection
    sid: str
    account: Account | None
    selected: SelectedMailbox | None
    condstore: bool
    qresync: bool
    utf8: bool
    rev2: bool
    saved: list[int]
    contexts: Contexts  # RFC 5267 update contexts
    watch: Watch | None  # NOTIFY (RFC 5465): what this session hears of
    held_flags: set[int]  # flag changes not yet told (NOTIFY without FlagChange) ...
    held_view: SelectedMailbox | None  # ... in this mailbox
    _resolved: tuple[Any, ...] | None = None  # the last resolve_uids: (view, generation, uid, set, UIDs)

    # --- output --------------------------------------------------------------
    def send(self, data: bytes | str) -> None:
        self.conn.write(data.encode() if isinstance(data, str) else data)

    def untagged(self, text: str) -> None:
        self.send(f"* {text}\r\n")

    def tagged(self, tag: str, kind: str, text: str, code: str = "") -> None:
        self.send(f"{tag} {kind} {'[' + code + '] ' if code else ''}{text}\r\n")

    # --- names ----------------------------------------------------------------
    def mailbox_name(self, wire: str) -> str:
        if self.utf8:  # RFC 6855 §3: names are UTF-8 as sent, no modified UTF-7 decoding
            return wire
        try:
            return decode_mutf7(wire)
        except ValueError as exc:
            raise CommandError("NO", "Mailbox name is not valid modified UTF-7", "CANNOT") from exc

    def wire_name(self, name: str) -> bytes:
        return _wire_name(name, self.utf8)

    # --- the selected mailbox ---------------------------------------------------
    async def sync(self, allow_expunge: bool = True, unsolicited: bool = False) -> None:
        """Tell the client what changed in the selected mailbox (RFC 3501 §7.4.1 rules), then the
        update contexts (RFC 5267 §4.3). ``unsolicited``: between commands under NOTIFY (RFC 5465
        §5), where flag changes wait unless asked for and new messages get their FETCH."""
        view = self.selected
        if view is None:
            return
        last_uid = view.uids[-1] if view.uids else 0
        update = await view.poll(allow_expunge)
        hold = unsolicited and not self.wants_flag_changes()
        self.report(update, hold_flags=hold)
        if not hold:
            await self.release_held(update)
        await self.contexts.refresh(self)
        if unsolicited and update.exists is not None:
            await self.announce_new(list(view.uids[bisect.bisect_right(view.uids, last_uid):]))

    def report(self, update: Update, hold_flags: bool = False) -> None:
        self.contexts.before_expunge(self, update.expunged_uids)  # REMOVEFROM goes first (RFC 5267 §4.3.4)
        if self.qresync and update.expunged_uids:  # RFC 7162 §3.2.10: VANISHED replaces EXPUNGE
            self.untagged(f"VANISHED {sequence_set_string(update.expunged_uids)}")
        else:
            for seq in update.expunged:
                self.untagged(f"{seq} EXPUNGE")
        if update.keywords is not None:
            self.flags_response(update.keywords)
        if update.exists is not None:
            self.untagged(f"{update.exists} EXISTS")
            if update.recent is not None and not self.rev2:
                self.untagged(f"{update.recent} RECENT")
        if self.held_view is not self.selected:
            self.held_flags, self.held_view = set(), self.selected
        if hold_flags:
            self.held_flags.update(uid for _seq, uid, _flags, _modseq in update.flags)
            return
        for seq, uid, flags, modseq in update.flags:
            self.flags_fetch(seq, uid, flags, modseq)

    async def release_held(self, update: Update) -> None:
        """Flag changes held back go out with the next report that may carry them, with the
        flags as they are now (the view keeps no flags: the rows are read)."""
        view = self.selected
        if not self.held_flags or view is None:
            return
        told = {uid for _seq, uid, _flags, _modseq in update.flags}
        held = sorted(u for u in self.held_flags - told if view.has(u) and u not in view.pending_expunge)
        self.held_flags.clear()
        async for batch in view.rows(held):
            new_keywords = view.keywords_update([e.flags for e in batch])
            if new_keywords is not None:
                self.flags_response(new_keywords, permanent=not view.readonly)
            for e in batch:
                seq = view.seq_of(e.uid)
                if seq is not None:
                    self.flags_fetch(seq, e.uid, view.flags_of(e.uid, e.flags), e.modseq)

    def flags_fetch(self, seq: int, uid: int, flags: tuple[str, ...], modseq: int) -> None:
        extra = f" MODSEQ ({modseq})" if self.condstore else ""
        self.untagged(f"{seq} FETCH (UID {uid} FLAGS ({' '.join(self.visible_flags(flags))}){extra})")

    def wants_flag_changes(self) -> bool:
        """Whether flag changes go out between commands (NOTIFY FlagChange, RFC 5465 §5.1)."""
        return True

    async def announce_new(self, uids: list[int]) -> None:
        """The FETCH that NOTIFY's MessageNew asks for new messages (RFC 5465 §5.2)."""

    def visible_flags(self, flags: tuple[str, ...]) -> tuple[str, ...]:
        """IMAP4rev2 has no \\Recent (RFC 9051 §2.3.2)."""
        return tuple(f for f in flags if f != "\\Recent") if self.rev2 else flags

    def enable_condstore(self) -> None:
        """A CONDSTORE-enabling command (RFC 7162 §3.1): say HIGHESTMODSEQ once, then MODSEQ everywhere."""
        if self.condstore:
            return
        self.condstore = True
        if self.selected is not None:
            self.untagged(f"OK [HIGHESTMODSEQ {self.selected.synced_modseq}] Highest")

    def flags_response(self, keywords: list[str] | set[str], permanent: bool = True) -> None:
        """FLAGS (and PERMANENTFLAGS) with the mailbox's keywords (RFC 3501 §7.2.6)."""
        names = " ".join(["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", *sorted(keywords)])
        self.untagged(f"FLAGS ({names})")
        if permanent:
            self.untagged(f"OK [PERMANENTFLAGS ({names} \\*)] Flags permitted")

    def resolve(self, sequence: Any, uid: bool) -> list[int]:
        """UIDs named by a sequence set, in mailbox order (RFC 3501 §6.4.8: absent UIDs are ignored;
        a message number beyond the mailbox is an error)."""
        return list(self.resolve_uids(sequence, uid))

    def resolve_uids(self, sequence: Any, uid: bool) -> Sequence[int]:
        """``resolve`` as a compact array, four bytes a message: what FETCH 1:* walks. The last answer
        is kept while the view's UIDs stay as they are: a client showing a list page fetches the same
        set again and again (callers never change the array)."""
        view = self.selected
        assert view is not None
        if sequence.uses_saved:  # "$": the result of the last SEARCH RETURN (SAVE) (RFC 5182)
            return [u for u in self.saved if view.has(u)]
        kept = self._resolved
        if (kept is not None and kept[0] is view and kept[1] == view.generation and kept[2] == uid
                and (kept[3] is sequence or kept[3] == sequence)):
            return cast("Sequence[int]", kept[4])
        if not view.uids:
            return []
        if uid:
            result = view.uids_in(sequence.normalized(view.uids[-1]), by_uid=True)
        else:
            if sequence.exceeds(view.exists):
                raise CommandError("BAD", "Message sequence number out of range")
            result = view.uids_in(sequence.normalized(view.exists), by_uid=False)
        if len(result) <= KEEP_RESOLVED:  # a page, not 1:* of a large mailbox held by an idle session
            self._resolved = (view, view.generation, uid, sequence, result)
        return result


@kept_when_short()  # the same few names, again and again
def _wire_name(name: str, utf8: bool) -> bytes:
    """A mailbox name as the client reads it: UTF-8 (RFC 6855) or modified UTF-7, quoted or a literal."""
    return quote(name, utf8=True) if utf8 else quote(encode_mutf7(name))
