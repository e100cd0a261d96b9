"""Opening a file in a worker thread without losing it when the caller is cancelled.

``handle = await asyncio.to_thread(open_fn, ...)`` leaks the file when the awaiting task is cancelled while
the thread runs (a browser leaving a page, a session ending): the thread still opens it, and the result
goes to a future nobody reads. :func:`opened` closes such a file as soon as the thread hands it back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import IO, Any


async def opened(open_fn: Callable[..., IO[bytes]], *args: Any) -> IO[bytes]:
    """``open_fn(*args)`` run in a thread; the file it opened is closed if the caller is cancelled meanwhile."""
    future = asyncio.get_running_loop().run_in_executor(None, open_fn, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(_close_result)
        raise


def _close_result(future: asyncio.Future[IO[bytes]]) -> None:
    if not future.cancelled() and future.exception() is None:
        with contextlib.suppress(OSError):
            future.result().close()
