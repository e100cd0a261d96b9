"""The searching commands: SEARCH, SORT, THREAD and CANCELUPDATE.

SEARCH (RFC 3501 §6.4.4) with ESEARCH (RFC 4731), SEARCHRES (RFC 5182) and CONDSTORE's MODSEQ
(RFC 7162 §3.1.5); SORT and THREAD (RFC 5256) with ESORT; CONTEXT=SEARCH and CONTEXT=SORT
(RFC 5267 §4): PARTIAL windows of the result, and UPDATE contexts kept by :mod:`.contexts`.

The front-end only parses (codec.imap), asks the mail store (services.search evaluates, sorts and
threads) and renders the answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from dizimail.codec.imap import commands as cmd
from dizimail.codec.imap.writer import ordered_set_string, sequence_set_string
from dizimail.imap.base import CommandError, SessionBase
from dizimail.imap.contexts import Context, Contexts
from dizimail.services.search import SearchTooComplex
from dizimail.services.threads import ThreadNode

T = TypeVar("T")

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

    def keep_context(self, tag: str, c: cmd.Search | cmd.Sort, result: list[int]) -> None:
        """RETURN (UPDATE): updates follow until CANCELUPDATE or another mailbox (RFC 5267 §4.3)."""
        if tag in self.contexts.live:
            raise CommandError("BAD", "Tag reuse")
        context = Context(tag, c.uid, c.key, c.charset, c.criteria if isinstance(c, cmd.Sort) else None,
                          list(result))
        if not self.contexts.add(self, context):
            self.untagged(f'NO [NOUPDATE "{tag}"] Too many contexts')

    async def searched(self, run: Callable[[], Awaitable[T]]) -> T:
        """A search of the mail store; a search too complex for it gets NO [LIMIT] (RFC 5530)."""
        try:
            return await run()
        except SearchTooComplex as exc:
            raise CommandError("NO", "Too many search keys", "LIMIT") from exc

    async def modseq_of(self, uids: Sequence[int]) -> int:
        """The highest MODSEQ of these messages (RFC 7162 §3.1.5), from their rows."""
        view = self.selected
        assert view is not None
        await view.load(uids)
        return max((view.modseqs.get(u, 0) for u in uids), default=0)

    async def cmd_search(self, tag: str, c: cmd.Search) -> None:
        view = self.selected
        assert view is not None
        uses_modseq = _uses_modseq(c.key)
        if uses_modseq:
            self.enable_condstore()
        saving = c.returns is not None and "SAVE" in {r.upper() for r in c.returns}
        try:
            uids = await self.searched(lambda: self.ctx.mailstore.search(view, c.key, self.saved))
        except CommandError:
            if saving:  # a failed SEARCH RETURN (SAVE) leaves $ empty (RFC 5182 §2.1)
                self.saved = []
            raise
        numbers = uids if c.uid else [s for s in (view.seq_of(u) for u in uids) if s is not None]
        returns_given = c.returns
        if returns_given is None and self.rev2:  # IMAP4rev2 answers SEARCH with ESEARCH (RFC 9051 §6.4.4)
            returns_given = ()
        if returns_given is None:
            modseq = ""
            if uses_modseq and uids:
                modseq = f" (MODSEQ {await self.modseq_of(uids)})"
            self.untagged(" ".join(["SEARCH", *map(str, numbers)]) + modseq)
            await self.sync(allow_expunge=c.uid)
            self.tagged(tag, "OK", "SEARCH completed")
            return
        returns = {r.upper() for r in returns_given}
        if "UPDATE" in returns:
            self.keep_context(tag, c, uids)
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
                parts.append(f"MODSEQ {await self.modseq_of(shown)}")
        self.untagged("ESEARCH " + " ".join(parts))
        await self.sync(allow_expunge=c.uid)
        self.tagged(tag, "OK", "SEARCH completed")

    async def cmd_sort(self, tag: str, c: cmd.Sort) -> None:
        """SORT (RFC 5256), ESORT (RFC 5267 §3) and CONTEXT=SORT (RFC 5267 §4)."""
        view = self.selected
        assert view is not None
        store = self.ctx.mailstore
        uids = await self.searched(lambda: store.search(view, c.key, self.saved))
        ordered = await store.sort(view, c.criteria, uids)
        numbers = ordered if c.uid else [s for s in (view.seq_of(u) for u in ordered) if s is not None]
        if c.returns is not None:
            returns = {r.upper() for r in c.returns}
            if "UPDATE" in returns:
                self.keep_context(tag, c, ordered)
            if not returns - CONTEXT_OPTIONS:
                returns.add("ALL")
            self.untagged("ESEARCH " + " ".join(self.esearch(tag, c.uid, returns, c.partial, numbers, True)))
        else:
            self.untagged(" ".join(["SORT", *map(str, numbers)]))
        await self.sync(allow_expunge=c.uid)
        self.tagged(tag, "OK", "SORT completed")

    async def cmd_thread(self, tag: str, c: cmd.Thread) -> None:
        """THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256)."""
        view = self.selected
        assert view is not None
        if c.algorithm.upper() not in ("ORDEREDSUBJECT", "REFERENCES"):
            raise CommandError("BAD", "Unknown threading algorithm")
        store = self.ctx.mailstore
        uids = await self.searched(lambda: store.search(view, c.key, self.saved))
        threads = await store.thread(view, c.algorithm, uids)
        number = (lambda uid: uid) if c.uid else (lambda uid: view.seq_of(uid) or 0)
        listed = thread_list(threads, number)
        self.untagged(f"THREAD {listed}" if listed else "THREAD")  # thread-data (RFC 5256 §4)
        await self.sync(allow_expunge=c.uid)
        self.tagged(tag, "OK", "THREAD completed")

    async def cmd_cancelupdate(self, tag: str, c: cmd.CancelUpdate) -> None:
        """CANCELUPDATE (RFC 5267 §4.3.5)."""
        self.contexts.active(self)
        unknown = self.contexts.cancel(c.tags)
        await self.sync(allow_expunge=False)
        if unknown:
            self.tagged(tag, "NO", "No update context for " + " ".join(unknown))
        else:
            self.tagged(tag, "OK", "CANCELUPDATE completed")


def thread_list(roots: list[ThreadNode], number: Callable[[int], int]) -> str:
    """``thread-list``s (RFC 5256 §4): a message with one child continues its line (``1 2 3``), with
    more each child is nested (``1 (2)(3)``), a dummy is its nested children. Built with a stack:
    a hostile chain of References is as deep as it is long."""
    out: list[str] = []
    stack: list[ThreadNode | str] = []
    for root in reversed(roots):
        stack += [")", root, "("]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        kids = item.children
        if item.uid is not None:
            out.append(str(number(item.uid)))
            if kids:
                out.append(" ")
            if len(kids) == 1:
                stack.append(kids[0])
                continue
        for kid in reversed(kids):
            stack += [")", kid, "("]
    return "".join(out)


def _uses_modseq(key: Any) -> bool:
    name = type(key).__name__
    if name == "ModSeq":
        return True
    for attr in ("key", "a", "b"):
        if hasattr(key, attr) and _uses_modseq(getattr(key, attr)):
            return True
    return any(_uses_modseq(k) for k in getattr(key, "keys", ()))
