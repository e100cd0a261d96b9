"""State and output helpers shared by the IMAP session's command groups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dizimail.codec.imap.utf7 import decode_mutf7, encode_mutf7
from dizimail.codec.imap.writer import quote, sequence_set_string
from dizimail.imap.contexts import Contexts
from dizimail.model.types import Account
from dizimail.net.connection import Connection
from dizimail.services.selected import SelectedMailbox, Update

if TYPE_CHECKING:
    from dizimail.imap.server import ImapContext


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
        return quote(name, utf8=True) if self.utf8 else quote(encode_mutf7(name))

    # --- the selected mailbox ---------------------------------------------------
    async def sync(self, allow_expunge: bool = True) -> None:
        """Tell the client what changed in the selected mailbox (RFC 3501 §7.4.1 rules), then the
        update contexts (RFC 5267 §4.3)."""
        if self.selected is None:
            return
        self.report(await self.selected.poll(allow_expunge))
        await self.contexts.refresh(self)

    def report(self, update: Update) -> None:
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
        for seq, uid, flags, modseq in update.flags:
            extra = f" MODSEQ ({modseq})" if self.condstore else ""
            self.untagged(f"{seq} FETCH (UID {uid} FLAGS ({' '.join(self.visible_flags(flags))}){extra})")

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
        view = self.selected
        assert view is not None
        if sequence.uses_saved:  # "$": the result of the last SEARCH RETURN (SAVE) (RFC 5182)
            return [u for u in self.saved if u in view.entries]
        if not view.uids:
            return []
        if uid:
            return list(sequence.select(view.uids))
        if sequence.exceeds(view.exists):
            raise CommandError("BAD", "Message sequence number out of range")
        return [view.uids[n - 1] for n in sequence.resolve(view.exists)]
