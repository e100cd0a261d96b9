"""The searching commands: SEARCH, SORT, THREAD and CANCELUPDATE.

SEARCH (RFC 3501 §6.4.4) with ESEARCH (RFC 4731), SEARCHRES (RFC 5182) and CONDSTORE's MODSEQ
(RFC 7162 §3.1.5); SORT and THREAD (RFC 5256) with ESORT; CONTEXT=SEARCH and CONTEXT=SORT
(RFC 5267 §4): PARTIAL windows of the result, and UPDATE contexts kept by :mod:`.contexts`.
"""

from __future__ import annotations

from typing import Any

from dizimail.codec.imap.writer import ordered_set_string, sequence_set_string
from dizimail.imap.base import CommandError, SessionBase
from dizimail.imap.contexts import Context, Contexts
from dizimail.imap.search import evaluate_search
from dizimail.imap.sort import Info, infos, order, thread

CONTEXT_OPTIONS = frozenset({"CONTEXT", "UPDATE"})


def window(numbers: list[int], partial: tuple[int, int]) -> list[int]:
    """The results at positions first..last (1-based; negative counts from the end, RFC 9394 §3.1)."""
    first, last = partial
    if first < 0:
        start, stop = max(len(numbers) + last, 0), len(numbers) + first + 1
        return numbers[start:stop] if stop > 0 else []
    return numbers[first - 1 : last]


class SearchCommands(SessionBase):
    contexts: Contexts

    def esearch(self, tag: str, uid: bool, returns: set[str], partial: tuple[int, int] | None,
                numbers: list[int], ordered: bool) -> list[str]:
        """ESEARCH return data (RFC 4731 §3.1, RFC 5267 §3.1 and §4.4); ``numbers`` in result order
        (mailbox order for SEARCH, which MIN and MAX read as the lowest and highest)."""
        parts = [f'(TAG "{tag}")'] + (["UID"] if uid else [])
        render = ordered_set_string if ordered else sequence_set_string
        if numbers and "MIN" in returns:
            parts.append(f"MIN {numbers[0]}")
        if numbers and "MAX" in returns:
            parts.append(f"MAX {numbers[-1]}")
        if numbers and "ALL" in returns:
            parts.append("ALL " + render(numbers))
        if partial is not None:
            part = window(numbers, partial)
            parts.append(f"PARTIAL ({partial[0]}:{partial[1]} {render(part) if part else 'NIL'})")
        if "COUNT" in returns:
            parts.append(f"COUNT {len(numbers)}")
        return parts

    def keep_context(self, tag: str, c: Any, result: list[int], sort_infos: list[Info] | None) -> None:
        """RETURN (UPDATE): updates follow until CANCELUPDATE or another mailbox (RFC 5267 §4.3)."""
        if tag in self.contexts.live:
            raise CommandError("BAD", "Tag reuse")
        context = Context(tag, c.uid, c.key, c.charset, getattr(c, "criteria", None), list(result),
                          {i.uid: i for i in sort_infos or ()})
        if not self.contexts.add(self, context):
            self.untagged(f'NO [NOUPDATE "{tag}"] Too many contexts')

    async def cmd_search(self, tag: str, c: Any) -> None:
        view = self.selected
        assert view is not None
        uses_modseq = _uses_modseq(c.key)
        if uses_modseq:
            self.enable_condstore()
        uids = await evaluate_search(self, c.key, c.charset)
        numbers = uids if c.uid else [s for s in (view.seq_of(u) for u in uids) if s is not None]
        returns_given = c.returns
        if returns_given is None and self.rev2:  # IMAP4rev2 answers SEARCH with ESEARCH (RFC 9051 §6.4.4)
            returns_given = ()
        if returns_given is None:
            modseq = ""
            if uses_modseq and uids:
                modseq = f" (MODSEQ {max(view.modseqs.get(u, 0) for u in uids)})"
            self.untagged("SEARCH" + "".join(f" {n}" for n in numbers) + modseq)
            await self.sync(allow_expunge=c.uid)
            self.tagged(tag, "OK", "SEARCH completed")
            return
        returns = {r.upper() for r in returns_given}
        if "UPDATE" in returns:
            self.keep_context(tag, c, uids, None)
        if "SAVE" in returns:  # SEARCHRES (RFC 5182)
            self.saved = list(uids)
            if not returns - CONTEXT_OPTIONS - {"SAVE"}:  # SAVE alone: no ESEARCH response (RFC 5182 §2.4)
                await self.sync(allow_expunge=c.uid)
                self.tagged(tag, "OK", "SEARCH completed, result saved")
                return
        if not returns - CONTEXT_OPTIONS - {"SAVE"}:
            returns.add("ALL")  # RETURN () means ALL (RFC 4731 §3.1)
        parts = self.esearch(tag, c.uid, returns, c.partial, numbers, ordered=False)
        if uses_modseq and uids:  # RFC 7162 §3.1.5: the highest MODSEQ of what is returned
            if returns & {"ALL", "COUNT"}:
                wanted = set(numbers)
            elif c.partial is not None:
                wanted = set(window(numbers, c.partial))
            else:
                wanted = ({numbers[0]} if "MIN" in returns else set()) | ({numbers[-1]} if "MAX" in returns else set())
            shown = [u for u in uids if (u if c.uid else view.seq_of(u)) in wanted]
            if shown:
                parts.append(f"MODSEQ {max(view.modseqs.get(u, 0) for u in shown)}")
        self.untagged("ESEARCH " + " ".join(parts))
        await self.sync(allow_expunge=c.uid)
        self.tagged(tag, "OK", "SEARCH completed")

    async def cmd_sort(self, tag: str, c: Any) -> None:
        """SORT (RFC 5256), ESORT (RFC 5267 §3) and CONTEXT=SORT (RFC 5267 §4)."""
        view = self.selected
        assert view is not None
        items = order(c.criteria, await infos(self, await evaluate_search(self, c.key, c.charset)))
        ordered = [i.uid for i in items]
        numbers = ordered if c.uid else [s for s in (view.seq_of(u) for u in ordered) if s is not None]
        if c.returns is not None:
            returns = {r.upper() for r in c.returns}
            if "UPDATE" in returns:
                self.keep_context(tag, c, ordered, items)
            if not returns - CONTEXT_OPTIONS:
                returns.add("ALL")
            self.untagged("ESEARCH " + " ".join(self.esearch(tag, c.uid, returns, c.partial, numbers, True)))
        else:
            self.untagged("SORT" + "".join(f" {n}" for n in numbers))
        await self.sync(allow_expunge=c.uid)
        self.tagged(tag, "OK", "SORT completed")

    async def cmd_thread(self, tag: str, c: Any) -> None:
        """THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256)."""
        if c.algorithm.upper() not in ("ORDEREDSUBJECT", "REFERENCES"):
            raise CommandError("BAD", "Unknown threading algorithm")
        uids = await evaluate_search(self, c.key, c.charset)
        self.untagged("THREAD " + await thread(self, c.algorithm, uids, c.uid))
        await self.sync(allow_expunge=c.uid)
        self.tagged(tag, "OK", "THREAD completed")

    async def cmd_cancelupdate(self, tag: str, c: Any) -> None:
        """CANCELUPDATE (RFC 5267 §4.3.5)."""
        self.contexts.active(self)
        unknown = self.contexts.cancel(c.tags)
        await self.sync(allow_expunge=False)
        if unknown:
            self.tagged(tag, "NO", "No update context for " + " ".join(unknown))
        else:
            self.tagged(tag, "OK", "CANCELUPDATE completed")


def _uses_modseq(key: Any) -> bool:
    name = type(key).__name__
    if name == "ModSeq":
        return True
    for attr in ("key", "a", "b"):
        if hasattr(key, attr) and _uses_modseq(getattr(key, attr)):
            return True
    return any(_uses_modseq(k) for k in getattr(key, "keys", ()))
