"""A cancelled task must end, even when a library swallowed the cancellation.

On Python 3.11, ``asyncio.wait_for`` returns the awaited call's result, or raises its error, when the
call finishes in the same loop iteration as the task's cancellation (gh-86296, fixed in 3.12). aioclamd
wraps every clamd call in it: a node stopped while a scan failed (clamd down) saw ``ClamdConnectionError``
instead of ``CancelledError``, logged it as a failed self-check, slept an hour and kept the node from
stopping. Code that catches a library's errors and carries on calls :func:`raise_if_cancelling` first.
"""

from __future__ import annotations

import asyncio


def raise_if_cancelling() -> None:
    """Raise CancelledError if the current task has been asked to stop (Task.cancelling, 3.11)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError()
