"""The content filter as the node and the command line use it: the global model loaded from the store
(and reloaded when another process trained it), scoring off the event loop, training in batches.

Personal models (one per user who asked for one) are loaded when they score a message and kept while
memory allows: least recently used first out once the kept personal models hold more than
:data:`PERSONAL_TOKENS` tokens (a few hundred bytes each in memory), so 5,000 users with personal
models cost a bounded amount, not 5,000 models. Whether a model has learnt enough to score is read from
its counts alone, without loading it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterable

from dizimail.interfaces.bayes import BayesStore
from dizimail.services.content.bayes import Model
from dizimail.services.content.tokens import tokenize
from dizimail.services.msgauth import from_addresses

log = logging.getLogger("dizimail.antispam")
GLOBAL = ""
RECHECK = 5.0  # seconds between looks at whether another process trained the model
MAX_COUNTS = 20_000  # models whose counts are remembered; past that all are forgotten and read again
PERSONAL_TOKENS = 500_000  # tokens of personal models kept in memory (the global model is always kept)


class ContentFilter:
    def __init__(self, store: BayesStore, personal_tokens: int = PERSONAL_TOKENS) -> None:
        self.store = store
        self.personal_tokens = personal_tokens
        self._models: OrderedDict[str, tuple[Model, int]] = OrderedDict()  # least recently used first
        self._checked: dict[str, float] = {}
        self._counts: dict[str, tuple[int, int, float]] = {}  # name → (nspam, nham, when read)
        self._lock = asyncio.Lock()

    async def model(self, name: str = GLOBAL) -> Model:
        now = time.monotonic()
        cached = self._models.get(name)
        if cached is not None and now - self._checked.get(name, 0.0) < RECHECK:
            self._models.move_to_end(name)
            return cached[0]
        async with self._lock:
            self._checked[name] = now
            version = await self.store.model_version(name)
            cached = self._models.get(name)
            if cached is None or cached[1] != version:
                nspam, nham, counts, version = await self.store.load_model(name)
                cached = (Model(nspam, nham, counts), version)
                self._models[name] = cached
            self._models.move_to_end(name)
            self._evict(keep=name)
        return cached[0]

    def _evict(self, keep: str) -> None:
        """Drop the least recently used personal models past the token budget (never ``keep``, which is
        about to score, nor the global model)."""
        held = sum(len(m.counts) for n, (m, _) in self._models.items() if n != GLOBAL)
        for name in list(self._models):
            if held <= self.personal_tokens:
                break
            if name in (GLOBAL, keep):
                continue
            held -= len(self._models.pop(name)[0].counts)
            self._checked.pop(name, None)

    def cached(self) -> list[str]:
        """Names of the models in memory, least recently used first."""
        return list(self._models)

    async def score(self, raw: bytes, name: str = GLOBAL) -> tuple[float, list[tuple[float, str]]]:
        """(0..10, the deciding tokens) of a message; tokenising and combining run in a worker thread."""
        model = await self.model(name)
        return await asyncio.to_thread(lambda: model.score(tokenize(raw)))

    async def score_many(self, raw: bytes, names: list[str]) -> list[tuple[float, list[tuple[float, str]]]]:
        """:meth:`score` against several models (the global one, personal ones), tokenising once."""
        models = [await self.model(name) for name in names]

        def work() -> list[tuple[float, list[tuple[float, str]]]]:
            tokens = tokenize(raw)
            return [model.score(tokens) for model in models]
        return await asyncio.to_thread(work)

    async def trained(self, name: str = GLOBAL) -> tuple[int, int]:
        """(spam, ham) messages the model learnt: from memory if loaded, else its counts alone."""
        now = time.monotonic()
        cached = self._models.get(name)
        if cached is not None and now - self._checked.get(name, 0.0) < RECHECK:
            return cached[0].nspam, cached[0].nham
        counts = self._counts.get(name)
        if counts is None or now - counts[2] >= RECHECK:
            nspam, nham, _version = await self.store.model_counts(name)
            if len(self._counts) >= MAX_COUNTS:
                self._counts.clear()
            counts = self._counts[name] = (nspam, nham, now)
        return counts[0], counts[1]

    async def learn(self, messages: Iterable[bytes], spam: bool, name: str = GLOBAL, sign: int = 1) -> int:
        """Count (``sign`` -1: uncount) messages as spam or ham; returns how many."""
        deltas: Counter[str] = Counter()
        count = 0
        for raw in messages:
            deltas.update(await asyncio.to_thread(tokenize, raw))
            count += 1
        await self.apply(name, spam, count * sign, {t: n * sign for t, n in deltas.items()})
        return count

    async def apply(self, name: str, spam: bool, messages: int, tokens: dict[str, int]) -> None:
        """Add counted tokens (from :func:`tokenize` over ``messages`` messages) to the stored model."""
        pairs = {t: (n, 0) if spam else (0, n) for t, n in tokens.items()}
        await self.store.apply(name, messages if spam else 0, 0 if spam else messages, pairs)
        self._checked.pop(name, None)
        self._counts.pop(name, None)

    async def learn_message(self, blob_id: str, data: bytes, spam: bool, name: str = GLOBAL) -> bool:
        """Learn one stored message as spam or ham, once: one learnt the other way before is unlearnt
        first (moved into Junk, then back out). False if it was already learnt so."""
        before = await self.store.learned_as(name, blob_id)
        if before is spam:
            return False
        tokens = await asyncio.to_thread(tokenize, data)
        if before is not None:
            await self.apply(name, before, -1, {t: -1 for t in tokens})
        await self.apply(name, spam, 1, {t: 1 for t in tokens})
        await self.store.mark_learned(name, blob_id, spam)
        return True


class JunkLearner:
    """Users train the filter with their Junk folder (RFC 6154 \\Junk): a message copied or moved into it
    is learnt as spam; one copied or moved out of it (not into Trash) as ham. In the background: the
    IMAP reply does not wait."""

    def __init__(self, content: ContentFilter, read: Callable[[str], Awaitable[bytes]],
                 personal: Callable[[str], Awaitable[bool]] | None = None,
                 revoke: Callable[[list[str], str], Awaitable[None]] | None = None) -> None:
        self.content = content
        self.read = read
        self.personal = personal
        self.revoke = revoke  # the automatic whitelist: a sender whose mail a user calls spam leaves it
        self.tasks: set[asyncio.Task[None]] = set()

    def copied(self, address: str, source: str | None, target: str | None, blob_ids: list[str]) -> None:
        """After ``address``'s COPY/MOVE from a mailbox with special use ``source`` to one with ``target``:
        the global model learns, and the user's own too if they have one."""
        if target == "\\Junk" and source != "\\Junk":
            spam = True
        elif source == "\\Junk" and target not in ("\\Junk", "\\Trash"):
            spam = False
        else:
            return
        task = asyncio.get_running_loop().create_task(self._learn(address, blob_ids, spam))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _learn(self, address: str, blob_ids: list[str], spam: bool) -> None:
        names = [GLOBAL] + ([address] if self.personal is not None and await self.personal(address) else [])
        for blob_id in blob_ids:
            try:
                data = await self.read(blob_id)
                for name in names:
                    await self.content.learn_message(blob_id, data, spam, name)
                if spam and self.revoke is not None:
                    await self.revoke(from_addresses(data), address.rpartition("@")[2])
            except Exception:  # one unreadable message does not stop the others
                log.exception("spam.learn.failed blob=%s", blob_id)
