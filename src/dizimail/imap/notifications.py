"""NOTIFY (RFC 5465): events sent as they happen, for the selected mailbox and for others.

After ``NOTIFY SET`` the session listens for news between commands (and in IDLE) through a
:class:`~dizimail.services.notify.Watch`: message events of the selected mailbox go out as the
usual EXISTS / EXPUNGE / FETCH (§5.1-5.3; SELECTED-DELAYED keeps expunges for the next command,
§6.1.2), those of other watched mailboxes as STATUS (§5.1-5.3), and changes to the mailbox list
as LIST (§5.4, §5.5). Metadata events are accepted and never fire: there is no METADATA here.

Without NOTIFY, or after NOTIFY NONE, the session behaves as RFC 3501 says: changes to the
selected mailbox at the end of commands and in IDLE. NOTIFY never takes those away (a client's
own EXPUNGE and the EXISTS count stay part of each command's answer).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from dizimail.codec.imap.commands import Notify, NotifyGroup
from dizimail.codec.imap.notify import EVENTS, MESSAGE_EVENTS, SELECTED_FILTERS
from dizimail.imap.base import CommandError, SessionBase
from dizimail.imap.fetch import FetchRenderer
from dizimail.model.errors import MailError
from dizimail.model.types import MailboxInfo, MailboxStatus
from dizimail.services.folders import DELIMITER, canonical_name, superiors, within
from dizimail.services.notify import FolderEvent

log = logging.getLogger("dizimail.imap")
NEW_AND_GONE = frozenset({"MessageNew", "MessageExpunge"})
FLAGS = frozenset({"FlagChange", "AnnotationChange"})


@dataclass
class Group:
    """An event group for other mailboxes, with its names decoded and canonical."""

    filter: str
    names: frozenset[str]
    events: frozenset[str]

    def matches(self, name: str, subscribed: set[str]) -> bool:
        if self.filter in ("PERSONAL", "INBOXES"):  # RFC 5465 §6.3: INBOXES may be PERSONAL
            return True
        if self.filter == "SUBSCRIBED":
            return name in subscribed
        if self.filter == "SUBTREE":  # one lookup per level, not one comparison per watched name
            return within(name, self.names)
        return name in self.names


@dataclass
class NotifyState:
    groups: list[Group]
    selected: NotifyGroup | None  # SELECTED / SELECTED-DELAYED
    events: dict[int, frozenset[str]] = field(default_factory=dict)  # watched mailbox id -> message events
    names: dict[int, str] = field(default_factory=dict)
    statuses: dict[int, MailboxStatus] = field(default_factory=dict)  # what the client was last told
    marks: dict[int, tuple[int, int]] = field(default_factory=dict)  # (UIDNEXT, HIGHESTMODSEQ) last looked at

    @property
    def selected_events(self) -> frozenset[str]:
        return frozenset(e.name for e in self.selected.events) if self.selected is not None else frozenset()

    def wants(self, event: str, name: str, subscribed: set[str]) -> bool:
        return any(event in g.events and g.matches(name, subscribed) for g in self.groups)


class NotifyCommands(SessionBase):
    notify: NotifyState | None
    fetcher: FetchRenderer
    idling: bool

    async def cmd_notify(self, tag: str, c: Notify) -> None:
        assert self.account is not None
        if c.groups is None:  # NOTIFY NONE
            self.stop_notify()
            self.tagged(tag, "OK", "NOTIFY completed")
            return
        unknown = {e.name for g in c.groups for e in g.events if e.name not in EVENTS.values()}
        if unknown:  # RFC 5465 §3.1: NO, and BADEVENT lists what is supported
            raise CommandError("NO", "Unsupported event", f"BADEVENT ({' '.join(EVENTS.values())})")
        groups = [Group(g.filter, self._names(g.mailboxes), frozenset(e.name for e in g.events))
                  for g in c.groups if g.filter not in SELECTED_FILTERS]
        selected = next((g for g in c.groups if g.filter in SELECTED_FILTERS), None)
        self.notify = NotifyState(groups, selected)
        if self.watch is None:
            self.watch = self.ctx.notifier.watch(self.account.id)
        await self.rewatch(send_status=c.status)
        await self.sync()  # NOTIFY SET implies a NOOP (RFC 5465 §3.1)
        self.tagged(tag, "OK", "NOTIFY completed")

    def _names(self, wire_names: tuple[str, ...]) -> frozenset[str]:
        names = set()
        for wire in wire_names:
            try:
                names.add(canonical_name(self.mailbox_name(wire)))
            except (CommandError, MailError):
                continue  # a name that cannot exist names no mailbox: ignored (RFC 5465 §3.1)
        return frozenset(names)

    def stop_notify(self) -> None:
        self.notify = None
        if self.watch is not None:
            self.ctx.notifier.unwatch(self.watch)
            self.watch = None

    def wants_flag_changes(self) -> bool:
        return self.notify is None or "FlagChange" in self.notify.selected_events

    # --- which mailboxes, and what the client knows of them -------------------------------
    async def rewatch(self, send_status: bool = False) -> None:
        """Work out the watched mailboxes again (after NOTIFY SET and when the list changes); a new
        one gets a STATUS baseline, sent when the client asked with STATUS (RFC 5465 §3.1)."""
        assert self.account is not None and self.notify is not None and self.watch is not None
        state = self.notify
        boxes = await self.ctx.folders.list(self.account)
        subscribed = set(await self.ctx.folders.subscriptions(self.account))
        events: dict[int, frozenset[str]] = {}
        for box in boxes:
            wanted = frozenset(e for g in state.groups if g.matches(box.name, subscribed)
                               for e in g.events if e in MESSAGE_EVENTS)
            if wanted:
                events[box.id] = wanted
        state.events, state.names = events, {b.id: b.name for b in boxes}
        state.statuses = {i: s for i, s in state.statuses.items() if i in events}
        state.marks = {b.id: (b.uidnext, b.highestmodseq) for b in boxes if b.id in events}
        self.watch_selected()
        for box in boxes:
            if box.id in events and box.id not in state.statuses:
                status = await self._status(box.name)
                if status is None:
                    continue
                state.statuses[box.id] = status
                if send_status and not self._is_selected(box.id):
                    self._status_line(box.name, status, _initial_items(events[box.id]))

    def watch_selected(self) -> None:
        """Hear of the selected mailbox too when the client asked for its events."""
        if self.notify is None or self.watch is None:
            return
        ids = set(self.notify.events)
        if self.selected is not None and self.notify.selected_events:
            ids.add(self.selected.info.id)
        if ids != self.watch.mailboxes:
            self.ctx.notifier.set_mailboxes(self.watch, ids)

    def _is_selected(self, mailbox_id: int) -> bool:
        return self.selected is not None and self.selected.info.id == mailbox_id

    async def _status(self, name: str) -> MailboxStatus | None:
        assert self.account is not None
        try:
            return (await self.ctx.mailstore.status(self.account, name))[1]
        except MailError:
            return None  # deleted meanwhile: the LIST of the MailboxName event says so

    def _status_line(self, name: str, status: MailboxStatus, items: list[str]) -> None:
        values = {"MESSAGES": status.messages, "UIDNEXT": status.uidnext, "UIDVALIDITY": status.uidvalidity,
                  "HIGHESTMODSEQ": status.highestmodseq, "UNSEEN": status.unseen}
        text = " ".join(f"{item} {values[item]}" for item in items)
        self.send(b"* STATUS " + self.wire_name(name) + f" ({text})\r\n".encode())

    # --- telling -------------------------------------------------------------------------
    async def deliver(self, recheck: bool = False) -> None:
        """Send what the watch heard of (and, on ``recheck``, what the selected mailbox shows)."""
        if self.notify is None or self.watch is None:
            return
        news = self.watch.take()
        changed = news.changed
        if news.list_changed:
            await self.rewatch()
        if news.folders:
            await self._folder_lines(news.folders)
        state = self.notify
        if recheck:
            changed = changed | await self._moved_elsewhere()
        selected_id = self.selected.info.id if self.selected is not None else None
        if state.selected_events and (recheck or selected_id in changed):
            delayed = state.selected is not None and state.selected.filter == "SELECTED-DELAYED"
            await self.sync(allow_expunge=self.idling or not delayed, unsolicited=True)
        for mailbox_id in sorted(changed):
            if mailbox_id in state.events and mailbox_id != selected_id:
                await self._status_change(mailbox_id)

    async def _moved_elsewhere(self) -> set[int]:
        """At the periodic re-check: watched mailboxes whose UIDNEXT or HIGHESTMODSEQ moved since
        the last look, one query for all. The Notifier hears this process and the queue-runner
        child; this catches the rest (the command line, another node)."""
        assert self.account is not None and self.notify is not None
        state = self.notify
        marks = {b.id: (b.uidnext, b.highestmodseq) for b in await self.ctx.folders.list(self.account)
                 if b.id in state.events}
        moved = {i for i, mark in marks.items() if state.marks.get(i) != mark}
        state.marks = marks
        return moved

    async def _status_change(self, mailbox_id: int) -> None:
        """STATUS for a change in another mailbox (RFC 5465 §5.1-5.3)."""
        state = self.notify
        assert state is not None
        name = state.names[mailbox_id]
        status = await self._status(name)
        old = state.statuses.get(mailbox_id)
        if status is None or old is None:
            return
        state.statuses[mailbox_id] = status
        events = state.events[mailbox_id]
        arrived = status.uidnext - old.uidnext
        new = "MessageNew" in events and arrived > 0
        gone = "MessageExpunge" in events and status.messages < old.messages + arrived
        new_or_gone = new or gone
        flags = bool(events & FLAGS) and status.highestmodseq != old.highestmodseq
        items = []
        if new_or_gone:  # MessageExpunge alone asks for MESSAGES only (RFC 5465 §5.3)
            items = ["MESSAGES", "UIDNEXT"] if "MessageNew" in events else ["MESSAGES"]
        if status.uidvalidity != old.uidvalidity or (flags and self.condstore):
            items.append("UIDVALIDITY")
        if self.condstore and (new_or_gone or flags):  # CONDSTORE clients learn the MODSEQ (§5.1, §5.2)
            items.append("HIGHESTMODSEQ")
        if flags and status.unseen != old.unseen:  # without CONDSTORE, UNSEEN is the flag news (§5.1)
            items.append("UNSEEN")
        if items:
            self._status_line(name, status, items)

    async def _folder_lines(self, events: list[FolderEvent]) -> None:
        """LIST responses for MailboxName and SubscriptionChange (RFC 5465 §5.4, §5.5)."""
        assert self.account is not None and self.notify is not None
        boxes = {b.name: b for b in await self.ctx.folders.list(self.account)}
        parents = superiors(list(boxes))
        subscribed = set(await self.ctx.folders.subscriptions(self.account))
        sent: set[str] = set()
        for event in events:
            if event.kind in ("subscribe", "unsubscribe"):
                if self.notify.wants("SubscriptionChange", event.name, subscribed | {event.name}):
                    self._list_line(event.name, boxes, parents, subscribed)
                continue
            if not (self.notify.wants("MailboxName", event.name, subscribed) or (
                    event.old_name is not None and self.notify.wants("MailboxName", event.old_name, subscribed))):
                continue
            if event.kind == "rename":
                assert event.old_name is not None
                self._list_line(event.name, boxes, parents, subscribed, old_name=event.old_name)
                continue
            for name in (event.name, event.name.rpartition(DELIMITER)[0]):  # the mailbox and its parent
                if name and name not in sent:
                    sent.add(name)
                    self._list_line(name, boxes, parents, subscribed)

    def _list_line(self, name: str, boxes: dict[str, MailboxInfo], parents: set[str], subscribed: set[str],
                   old_name: str | None = None) -> None:
        box = boxes.get(name)
        if box is None:
            attrs = ["\\NonExistent"]
        else:
            attrs = ["\\HasChildren" if name in parents else "\\HasNoChildren"]
            if box.special_use:
                attrs.append(box.special_use)
        if name in subscribed:
            attrs.append("\\Subscribed")
        extra = b' ("OLDNAME" (' + self.wire_name(old_name) + b"))" if old_name is not None else b""
        self.send(f'* LIST ({" ".join(attrs)}) "{DELIMITER}" '.encode() + self.wire_name(name) + extra + b"\r\n")

    async def announce_new(self, uids: list[int]) -> None:
        """MessageNew with fetch attributes: a FETCH after the EXISTS (RFC 5465 §5.2)."""
        if self.notify is None or self.notify.selected is None or self.selected is None:
            return
        items = [i for e in self.notify.selected.events if e.name == "MessageNew" for i in e.fetch]
        view = self.selected
        async for batch in view.rows(uids if items else []):
            for entry in batch:
                seq = view.seq_of(entry.uid)
                if seq is None:
                    continue
                try:
                    parts = await self.fetcher.render_message(entry, items)
                except Exception as exc:  # expunged meanwhile, or a part that cannot be decoded: no FETCH
                    log.info("imap.notify.fetch_skipped session=%s uid=%s error=%r", self.sid, entry.uid, exc)
                    continue
                self.send(f"* {seq} FETCH (".encode() + b" ".join(parts) + b")\r\n")

    # --- waiting ---------------------------------------------------------------------------
    async def read_input(self, timeout: float) -> bytes:
        """The next bytes from the client; under NOTIFY, events go out while we wait (§3.1)."""
        if self.notify is None or self.watch is None:
            return await self.conn.read_some(timeout)
        reader = asyncio.ensure_future(self.conn.read_some(timeout))
        recheck = False
        try:
            while True:
                self.watch_selected()
                try:
                    await self.deliver(recheck)
                except MailError as exc:  # a store hiccup costs this round of news, not the session
                    log.warning("imap.notify.failed session=%s error=%s", self.sid, exc)
                await self.conn.drain()
                if self.watch is None:  # NOTIFY NONE cannot happen while waiting, but be safe
                    return await reader
                ready = asyncio.ensure_future(self.watch.ready.wait())
                done, _ = await asyncio.wait({reader, ready}, timeout=self.ctx.config.storage.recheck_interval, return_when=asyncio.FIRST_COMPLETED)
                if not ready.done():
                    ready.cancel()
                if reader in done and not self.watch.ready.is_set():  # news first, then the command
                    return reader.result()
                recheck = not done
        finally:
            if not reader.done():
                reader.cancel()


def _initial_items(events: frozenset[str]) -> list[str]:
    """What the first STATUS must hold (RFC 5465 §3.1)."""
    items = []
    if events & NEW_AND_GONE:
        items += ["MESSAGES", "UIDNEXT", "UIDVALIDITY"] if "MessageNew" in events else ["MESSAGES"]
    if events & FLAGS:
        items += [i for i in ("UIDVALIDITY", "HIGHESTMODSEQ") if i not in items]
    return items

