"""services.offload.opened: a file opened in a thread for a caller that was cancelled meanwhile is closed,
not left to the garbage collector (a ResourceWarning, a file descriptor held until then)."""

from __future__ import annotations

import asyncio
import threading

from dizimail.services.offload import opened


def test_a_file_opened_for_a_cancelled_caller_is_closed(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(b"data")
    go, files = threading.Event(), []

    def slow_open(name: str):
        go.wait(10)
        handle = open(name, "rb")  # handed to the caller, as BlobStore.open does
        files.append(handle)
        return handle

    async def scenario() -> None:
        task = asyncio.ensure_future(opened(slow_open, str(path)))
        await asyncio.sleep(0.05)
        task.cancel()
        go.set()
        try:
            await task
        except asyncio.CancelledError:
            pass
        for _ in range(100):  # the thread hands the file back a moment later
            if files and files[0].closed:
                break
            await asyncio.sleep(0.01)
        handle = await opened(open, str(path), "rb")  # not cancelled: the caller gets it, open
        try:
            assert handle.read() == b"data"
        finally:
            handle.close()
    asyncio.run(scenario())
    assert files and files[0].closed
