"""Mailbox and message commands of the IMAP session (RFC 3501 §6.3, §6.4; extensions noted)."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import unquote

from dizimail.codec.imap import commands as cmd
from dizimail.codec.imap.utf7 import decode_mutf7
from dizimail.codec.imap.wildcard import PatternSet
from dizimail.codec.imap.writer import sequence_set_string
from dizimail.codec.mime.imap import section
from dizimail.imap.base import CommandError, SessionBase
from dizimail.imap.fetch import FetchRenderer
from dizimail.model.errors import MailError
from dizimail.services.folders import DELIMITER, superiors

# LIST matching on the event loop up to about 20 ms (name characters x patterns, the automaton's
# character counting five); beyond, in a worker thread, so other sessions keep being served.
INLINE_MATCH_WORK = 250_000
AUTOMATON_COST = 5
STATUS_ITEMS = ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ", "SIZE", "DELETED")


# STATUS items (RFC 9051 §6.3.11, RFC 7162 HIGHESTMODSEQ, RFC 8438 SIZE, RFC 7889 APPENDLIMIT) and
# the MailboxStatus field each reports (APPENDLIMIT: the node's limit).
_STATUS_FIELDS = {"MESSAGES": "messages", "RECENT": "recent", "UIDNEXT": "uidnext", "UIDVALIDITY": "uidvalidity",
                  "UNSEEN": "unseen", "HIGHESTMODSEQ": "highestmodseq", "SIZE": "size", "DELETED": "deleted",
                  "APPENDLIMIT": ""}


def _error(kind: str, text: str, code: str = "") -> Exception:
    return CommandError(kind, text, code)


_URL = re.compile(r"^/(?P<mailbox>[^;/]+(?:/[^;/]+)*?)/?(?:;UIDVALIDITY=(?P<uidvalidity>\d+))?/;UID=(?P<uid>\d+)"
                  r"(?:/;SECTION=(?P<section>[^;/]+))?(?:/;PARTIAL=(?P<offset>\d+)(?:\.(?P<length>\d+))?)?$",
                  re.IGNORECASE)


def _lenient(wire: str) -> str:
    """A LIST pattern that is not valid modified UTF-7 just matches nothing special (RFC 3501 §6.3.8)."""
    try:
        return decode_mutf7(wire)
    except ValueError:
        return wire


def _full_pattern(reference: str, pattern: str) -> str:
    """The reference name and the pattern joined (RFC 3501 §6.3.8); a pattern from the root ignores it."""
    return reference + pattern if not pattern.startswith(DELIMITER) else pattern


async def _matching(patterns: PatternSet, names: list[str]) -> set[str]:
    """The names that match; many long names go to a worker thread so other sessions keep being served."""
    work = sum(map(len, names)) * len(patterns) * (AUTOMATON_COST if patterns.costly else 1)
    if work <= INLINE_MATCH_WORK:
        return patterns.matching(names)
    return await asyncio.to_thread(patterns.matching, names)


class MailboxCommands(SessionBase):
    fetcher: FetchRenderer

    # --- SELECT / EXAMINE ----------------------------------------------------------
    async def cmd_select(self, tag: str, c: cmd.Select) -> None:
        assert self.account is not None
        if c.condstore:
            self.condstore = True
        self.selected = None  # RFC 3501: a failed SELECT leaves no mailbox selected
        self.saved = []
        view = await self.ctx.mailstore.select(self.account, self.mailbox_name(c.mailbox), c.readonly)
        self.selected = view
        self.flags_response(view.keywords, permanent=not c.readonly)
        if c.readonly:
            self.untagged("OK [PERMANENTFLAGS ()] Read-only mailbox")
        self.untagged(f"{view.exists} EXISTS")
        if not self.rev2:
            self.untagged(f"{view.recent_count()} RECENT")
        if view.first_unseen is not None and not self.rev2:
            self.untagged(f"OK [UNSEEN {view.first_unseen}] First unseen")
        self.untagged(f"OK [UIDVALIDITY {view.info.uidvalidity}] UIDs valid")
        self.untagged(f"OK [UIDNEXT {view.uidnext}] Predicted next UID")
        self.untagged(f"OK [HIGHESTMODSEQ {view.synced_modseq}] Highest")
        if c.qresync is not None:
            await self.resynchronise(view, c.qresync)
        self.tagged(tag, "OK", "SELECT completed" if not c.readonly else "EXAMINE completed",
                    "READ-ONLY" if c.readonly else "READ-WRITE")

    async def resynchronise(self, view: Any, params: Any) -> None:
        """RFC 7162 §3.2.5.2: what vanished and what changed since the client's MODSEQ."""
        if not self.qresync:
            raise _error("BAD", "ENABLE QRESYNC first")
        if params.uidvalidity != view.info.uidvalidity:
            return  # the client must resynchronise from scratch
        vanished, changed = view.resync(await self.ctx.mailstore.changes_since(view, params.modseq))
        if params.known_uids is not None and vanished:
            vanished = params.known_uids.select(vanished)
        if vanished:
            self.untagged(f"VANISHED (EARLIER) {sequence_set_string(vanished)}")
        new_keywords = view.keywords_update([change.flags for change in changed])
        if new_keywords is not None:  # set since SELECT read the mailbox's keywords
            self.flags_response(new_keywords, permanent=not view.readonly)
        for change in changed:
            seq = view.seq_of(change.uid)
            if seq is not None:
                flags = " ".join(self.visible_flags(view.flags_of(change.uid, change.flags)))
                self.untagged(f"{seq} FETCH (UID {change.uid} FLAGS ({flags}) MODSEQ ({change.modseq}))")

    async def cmd_close(self, tag: str, c: cmd.Close) -> None:
        assert self.selected is not None
        if not self.selected.readonly:  # silently remove \Deleted messages (RFC 3501 §6.4.2)
            await self.ctx.mailstore.expunge_uids(self.selected, await self.selected.deleted())
        self.selected = None
        self.tagged(tag, "OK", "CLOSE completed")

    async def cmd_unselect(self, tag: str, c: cmd.Unselect) -> None:
        self.selected = None
        self.tagged(tag, "OK", "UNSELECT completed")

    # --- folders --------------------------------------------------------------------
    async def cmd_create(self, tag: str, c: cmd.Create) -> None:
        assert self.account is not None
        use = c.special_use[0] if c.special_use else None
        await self.ctx.folders.create(self.account, self.mailbox_name(c.mailbox), use, origin=self.watch)
        self.tagged(tag, "OK", "CREATE completed")

    async def cmd_delete(self, tag: str, c: cmd.Delete) -> None:
        assert self.account is not None
        name = self.mailbox_name(c.mailbox)
        if self.selected is not None and self.selected.info.name == name:
            self.selected = None
        await self.ctx.folders.delete(self.account, name, origin=self.watch)
        self.tagged(tag, "OK", "DELETE completed")

    async def cmd_rename(self, tag: str, c: cmd.Rename) -> None:
        assert self.account is not None
        await self.ctx.folders.rename(self.account, self.mailbox_name(c.old), self.mailbox_name(c.new),
                                      origin=self.watch)
        self.tagged(tag, "OK", "RENAME completed")

    async def cmd_subscribe(self, tag: str, c: cmd.Subscribe) -> None:
        assert self.account is not None
        await self.ctx.folders.subscribe(self.account, self.mailbox_name(c.mailbox), True, origin=self.watch)
        self.tagged(tag, "OK", "SUBSCRIBE completed")

    async def cmd_unsubscribe(self, tag: str, c: cmd.Unsubscribe) -> None:
        assert self.account is not None
        await self.ctx.folders.subscribe(self.account, self.mailbox_name(c.mailbox), False, origin=self.watch)
        self.tagged(tag, "OK", "UNSUBSCRIBE completed")

    async def cmd_list(self, tag: str, c: cmd.List) -> None:
        """LIST with LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819) and SPECIAL-USE (RFC 6154)."""
        selection = {o.upper() for o in c.selection}
        returns = {r.upper() for r in c.returns}
        await self.list_like(tag, c.reference, c.patterns, "LIST", subscribed_only="SUBSCRIBED" in selection,
                             special_only="SPECIAL-USE" in selection,
                             show_subscribed="SUBSCRIBED" in returns or "SUBSCRIBED" in selection,
                             status_items=c.status_items if "STATUS" in returns else (),
                             recursive="RECURSIVEMATCH" in selection,
                             children=not selection or "CHILDREN" in returns)

    async def cmd_lsub(self, tag: str, c: cmd.Lsub) -> None:
        await self.list_like(tag, c.reference, (c.pattern,), "LSUB", subscribed_only=True)

    async def list_like(self, tag: str, reference: str, patterns: tuple[str, ...], verb: str,
                        subscribed_only: bool, special_only: bool = False, show_subscribed: bool = False,
                        status_items: tuple[str, ...] = (), recursive: bool = False, children: bool = True) -> None:
        assert self.account is not None
        if patterns == ("",):  # RFC 3501 §6.3.8: the delimiter and root
            self.untagged(f'{verb} (\\Noselect) "{DELIMITER}" ""')
            self.tagged(tag, "OK", f"{verb} completed")
            return
        boxes = await self.ctx.folders.list(self.account)
        names = {b.name for b in boxes}
        subscribed: set[str] = set(await self.ctx.folders.subscriptions(self.account))
        wanted = PatternSet(_full_pattern(_lenient(reference), _lenient(p)) for p in patterns)
        # Every name is matched once; the hierarchy questions below are set lookups, so LIST stays
        # linear in the number of mailboxes and subscriptions (no "any child?" scan per mailbox).
        matched = await _matching(wanted, list(names | subscribed))
        parents = superiors(names)
        subscribed_parents = superiors(subscribed)
        unmatched_subscribed_parents = superiors(subscribed - matched)
        if subscribed_only or verb == "LSUB":  # subscribed names whose mailbox is gone (RFC 5258 §3.4)
            for name in sorted(subscribed - names):
                if name in matched:
                    gone = "" if verb == "LSUB" else "\\Subscribed \\NonExistent"
                    self.send(f'* {verb} ({gone}) "{DELIMITER}" '.encode() + self.wire_name(name) + b"\r\n")
        percent = any("%" in p for p in patterns)
        for box in boxes:
            if box.name not in matched or (special_only and not box.special_use):
                continue
            if verb == "LSUB":
                if box.name in subscribed:
                    attrs = []
                elif box.name in subscribed_parents and percent:
                    attrs = ["\\Noselect"]  # RFC 3501 §6.3.9: a parent of subscribed mailboxes
                else:
                    continue
            extra = b""
            if verb == "LIST":
                subscribed_child = box.name in unmatched_subscribed_parents
                if subscribed_only and box.name not in subscribed:
                    if not (recursive and subscribed_child):
                        continue
                if recursive and subscribed_child:  # RFC 5258 §3.5: CHILDINFO
                    extra = b' ("CHILDINFO" ("SUBSCRIBED"))'
                attrs = []
                if children:
                    attrs.append("\\HasChildren" if box.name in parents else "\\HasNoChildren")
                if box.special_use:
                    attrs.append(box.special_use)
                if show_subscribed and box.name in subscribed:
                    attrs.append("\\Subscribed")
            self.send(f'* {verb} ({" ".join(attrs)}) "{DELIMITER}" '.encode() + self.wire_name(box.name) + extra
                      + b"\r\n")
            if status_items:
                await self.status_line(box.name, status_items)
        self.tagged(tag, "OK", f"{verb} completed")

    async def cmd_status(self, tag: str, c: cmd.Status) -> None:
        await self.status_line(self.mailbox_name(c.mailbox), c.items)
        self.tagged(tag, "OK", "STATUS completed")

    async def status_line(self, name: str, wanted: tuple[str, ...]) -> None:
        assert self.account is not None
        box, status = await self.ctx.mailstore.status(self.account, name, self.selected)
        items = []
        for item in wanted:
            word = item.upper()
            field = _STATUS_FIELDS.get(word)
            if field is None:
                raise _error("BAD", f"Unknown STATUS item {item}")
            value = self.ctx.config.limits.max_message_size if word == "APPENDLIMIT" else getattr(status, field)
            items.append(f"{word} {value}")
        self.send(b"* STATUS " + self.wire_name(box.name) + f" ({' '.join(items)})\r\n".encode())

    async def cmd_getquotaroot(self, tag: str, c: cmd.GetQuotaRoot) -> None:
        self.send(b"* QUOTAROOT " + self.wire_name(self.mailbox_name(c.mailbox)) + b' ""\r\n')
        await self.quota(tag, "GETQUOTAROOT")

    async def cmd_getquota(self, tag: str, c: cmd.GetQuota) -> None:
        await self.quota(tag, "GETQUOTA")

    async def quota(self, tag: str, verb: str) -> None:
        """RFC 9208: one quota root, "", for the whole account (STORAGE in KiB)."""
        assert self.account is not None
        account = await self.ctx.accounts.get_user(self.account.address)
        if account.quota_bytes:
            self.untagged(f'QUOTA "" (STORAGE {account.used_bytes // 1024} {account.quota_bytes // 1024})')
        else:
            self.untagged('QUOTA "" ()')
        self.tagged(tag, "OK", f"{verb} completed")

    async def cmd_setquota(self, tag: str, c: cmd.SetQuota) -> None:
        raise _error("NO", "Quotas are set by the administrator", "NOPERM")

    # --- APPEND ---------------------------------------------------------------------
    async def cmd_append(self, tag: str, c: cmd.Append) -> None:
        """RFC 3501 §6.3.11 (+ RFC 3502 MULTIAPPEND, RFC 4315 APPENDUID); through services.ingest."""
        assert self.account is not None
        name = self.mailbox_name(c.mailbox)
        try:
            box, _status = await self.ctx.mailstore.status(self.account, name)
        except MailError as exc:
            raise _error("NO", "Mailbox does not exist", "TRYCREATE") from exc
        from dizimail.services.selected import normalize_flags

        uids: list[int] = []
        for message in c.messages:
            data = message.data if message.catenate is None else await self.catenate(message.catenate)
            if len(data) > self.ctx.config.limits.max_message_size:
                raise _error("NO", "Message too large", "TOOBIG")
            flags = normalize_flags(message.flags)
            when = message.date.timestamp() if message.date is not None else None
            result = await self.ctx.ingest.append(self.account, box.name, data, flags, when)
            uids.extend(result.uids)
        await self.sync()
        self.tagged(tag, "OK", "APPEND completed",
                    f"APPENDUID {box.uidvalidity} {sequence_set_string(uids)}" if uids else "")

    async def catenate(self, parts: tuple[tuple[str, bytes | str], ...]) -> bytes:
        """RFC 4469: the message is the concatenation of literal text and parts of the user's own
        messages named by relative IMAP URLs (RFC 5092) "/mailbox;UIDVALIDITY=n/;UID=n[/;SECTION=s]"."""
        assert self.account is not None
        out = bytearray()
        for kind, value in parts:
            if kind.upper() == "TEXT":
                out += value if isinstance(value, bytes) else value.encode()
            else:
                out += await self.url_part(str(value))
            if len(out) > self.ctx.config.limits.max_message_size:
                raise _error("NO", "Message too large", "TOOBIG")
        return bytes(out)

    async def url_part(self, url: str) -> bytes:
        assert self.account is not None
        match = _URL.match(url)
        if match is None:
            raise _error("NO", f"Unsupported URL {url}", "BADURL " + url)
        name = self.mailbox_name(unquote(match["mailbox"]))
        try:
            box, _status = await self.ctx.mailstore.status(self.account, name)
        except MailError as exc:
            raise _error("NO", "No such mailbox", "BADURL " + url) from exc
        if match["uidvalidity"] and int(match["uidvalidity"]) != box.uidvalidity:
            raise _error("NO", "UIDVALIDITY mismatch", "BADURL " + url)
        view = self.selected if self.selected is not None and self.selected.info.id == box.id else \
            await self.ctx.mailstore.select(self.account, name, readonly=True)
        uid = int(match["uid"])
        entry = (await view.load([uid])).get(uid) if view.has(uid) else None
        if entry is None:
            raise _error("NO", "No such message", "BADURL " + url)
        raw = await self.ctx.mailstore.read_message(entry)
        spec = unquote(match["section"] or "")
        numbers: list[int] = []
        for piece in spec.upper().split("."):
            if piece.isdigit():
                numbers.append(int(piece))
            else:
                break
        kind = spec.upper()[len(".".join(str(n) for n in numbers)):].lstrip(".")
        data = section(raw, tuple(numbers), kind)
        if data is None:
            raise _error("NO", "No such section", "BADURL " + url)
        if match["offset"] is not None:  # RFC 5092 §3.3 ;PARTIAL=offset[.length]
            start = int(match["offset"])
            data = data[start:start + int(match["length"])] if match["length"] else data[start:]
        return data

    # --- message commands -------------------------------------------------------------
    async def cmd_fetch(self, tag: str, c: cmd.Fetch) -> None:
        await self.fetcher.fetch(tag, c)

    async def cmd_store(self, tag: str, c: cmd.Store) -> None:
        view = self.selected
        assert view is not None
        if view.readonly:
            raise _error("NO", "Mailbox is read-only", "READ-ONLY")
        uids = self.resolve(c.sequence, c.uid)
        if c.unchangedsince is not None:
            self.enable_condstore()
        changed, failed = await self.ctx.mailstore.store(view, uids, c.mode, tuple(c.flags), c.unchangedsince)
        # A keyword the client named is in FLAGS from now on, even if no message has it (removed, expunged)
        new_keywords = view.keywords_update([ch.flags for ch in changed] + [tuple(c.flags)])
        if new_keywords is not None:
            self.flags_response(new_keywords)
        if c.silent and self.condstore:  # RFC 7162 §3.1.3: MODSEQ even for .SILENT
            for ch in changed:
                self.store_fetch(ch.uid, None, ch.modseq, c.uid)
        elif not c.silent:  # the flags as they are now: the rows, read after the change
            async for batch in view.rows(uids):
                new_keywords = view.keywords_update([e.flags for e in batch])
                if new_keywords is not None:  # another session's keyword on one of these
                    self.flags_response(new_keywords)
                for e in batch:
                    self.store_fetch(e.uid, e.flags, e.modseq, c.uid)
        await self.sync(allow_expunge=c.uid)
        if failed:
            numbers = failed if c.uid else [s for s in (view.seq_of(u) for u in failed) if s]
            self.tagged(tag, "OK", "Conditional STORE failed", f"MODIFIED {sequence_set_string(sorted(numbers))}")
        else:
            self.tagged(tag, "OK", "STORE completed")

    def store_fetch(self, uid: int, flags: tuple[str, ...] | None, modseq: int, with_uid: bool) -> None:
        view = self.selected
        assert view is not None
        seq = view.seq_of(uid)
        if seq is None:
            return
        # Once QRESYNC is on, every FETCH that STORE causes carries the UID (RFC 7162, QRESYNC servers)
        parts = [f"UID {uid}"] if with_uid or self.qresync else []
        if flags is not None:
            parts.append(f"FLAGS ({' '.join(self.visible_flags(view.flags_of(uid, flags)))})")
        if self.condstore:
            parts.append(f"MODSEQ ({modseq})")
        if flags is not None or self.condstore:
            self.untagged(f"{seq} FETCH ({' '.join(parts)})")

    async def cmd_expunge(self, tag: str, c: cmd.Expunge) -> None:
        view = self.selected
        assert view is not None
        if view.readonly:
            raise _error("NO", "Mailbox is read-only", "READ-ONLY")
        deleted = await view.deleted()
        if c.uids is not None:  # UID EXPUNGE (RFC 4315)
            allowed = set(self.resolve_uids(c.uids, True))  # "$" included (RFC 5182)
            deleted = [u for u in deleted if u in allowed]
        await self.ctx.mailstore.expunge_uids(view, deleted)
        await self.sync()
        self.tagged(tag, "OK", "EXPUNGE completed")

    async def cmd_copy(self, tag: str, c: cmd.Copy) -> None:
        await self.copy_or_move(tag, c, move=False)

    async def cmd_move(self, tag: str, c: cmd.Move) -> None:
        await self.copy_or_move(tag, c, move=True)

    async def copy_or_move(self, tag: str, c: cmd.Copy | cmd.Move, move: bool) -> None:
        assert self.account is not None and self.selected is not None
        view = self.selected
        if move and view.readonly:
            raise _error("NO", "Mailbox is read-only", "READ-ONLY")
        uids = self.resolve(c.sequence, c.uid)
        try:
            box, pairs = await self.ctx.mailstore.copy(self.account, view, uids, self.mailbox_name(c.mailbox), move)
        except MailError as exc:
            if exc.public_key == "unknown_mailbox":
                raise _error("NO", "Mailbox does not exist", "TRYCREATE") from exc
            raise
        code = (f"COPYUID {box.uidvalidity} {sequence_set_string([p[0] for p in pairs])} "
                f"{sequence_set_string([p[1] for p in pairs])}") if pairs else ""
        if move:
            if code:
                self.untagged(f"OK [{code}] Moved")
            await self.sync()
            self.tagged(tag, "OK", "MOVE completed")
        else:
            await self.sync(allow_expunge=c.uid)
            self.tagged(tag, "OK", "COPY completed", code)
