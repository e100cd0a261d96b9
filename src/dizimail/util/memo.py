"""Results kept for short texts: what a session asks again and again (the names of its mailboxes)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar, cast

P = ParamSpec("P")
T = TypeVar("T")


def kept_when_short(limit: int = 256, size: int = 4096) -> Callable[[Callable[Concatenate[str, P], T]],
                                                                   Callable[Concatenate[str, P], T]]:
    """Keep the results of a pure function of a text (and hashable arguments after it) for texts of at
    most ``limit`` characters, the ``size`` most recently used: a longer text, a hostile client's, is
    worked out each time, so the memory kept stays bounded. Exceptions are raised again, never kept
    (``functools.lru_cache``); the cache is the wrapper's ``kept``."""
    def wrap(fn: Callable[Concatenate[str, P], T]) -> Callable[Concatenate[str, P], T]:
        kept = functools.lru_cache(maxsize=size)(fn)
        look_up = cast(Callable[Concatenate[str, P], T], kept)

        def call(text: str, *args: P.args, **kwargs: P.kwargs) -> T:
            return look_up(text, *args, **kwargs) if len(text) <= limit else fn(text, *args, **kwargs)
        call.kept = kept  # type: ignore[attr-defined]
        return cast(Callable[Concatenate[str, P], T], functools.wraps(fn)(call))
    return wrap
