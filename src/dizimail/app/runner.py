"""The queue runner in its own process (``delivery.runner = "process"``): the node's second core.

``dizimail serve`` starts ``dizimail queue run --wake-stdin`` as a child and writes a byte to its stdin
whenever ingest queued something, so delivery starts at once rather than at the next poll; the child
leaves when its stdin closes (the node stopped or died) or on SIGTERM, and the node starts a new one if
it dies. Both processes share the database; leases keep their work apart (docs/queue.md). The other way,
the child writes ``changed ID ...`` lines to its stdout when it delivered into local mailboxes (a retry
after a full mailbox, a DSN to a local sender), and the node tells its sessions (IDLE, NOTIFY) at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from dizimail.app.build import make_runner, open_node
from dizimail.config.schema import Config
from dizimail.services.ingest import Ingest
from dizimail.services.notify import Notifier

log = logging.getLogger("dizimail.app")
RESTART_DELAY = 1.0


async def run_queue(config: Config, wake_stdin: bool) -> None:
    """``dizimail queue run``: only the queue runner of this node, until SIGTERM (or stdin's end). Started
    as root (by hand: ``serve`` starts it after dropping root), it becomes the service user first
    (``privileges.enter``, called by the command)."""
    loop = asyncio.get_running_loop()
    async with open_node(config) as (services, stores):
        runner = make_runner(config, services, stores)
        task = loop.create_task(runner.run())
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        if wake_stdin:
            services.notifier.forward = _report_changes
            reader = asyncio.StreamReader()
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

            async def wakes() -> None:
                while await reader.read(4096):
                    services.ingest.queued.set()
                task.cancel()  # the node is gone
            waker = loop.create_task(wakes())
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if wake_stdin:
            waker.cancel()


def _report_changes(mailbox_ids: set[int]) -> None:
    sys.stdout.buffer.write(b"changed " + " ".join(map(str, sorted(mailbox_ids))).encode() + b"\n")
    sys.stdout.buffer.flush()


class RunnerProcess:
    """The node's side: start the child, forward wake-ups, pass its mailbox changes to the node's
    sessions, restart it if it dies."""

    def __init__(self, config_path: Path, ingest: Ingest, notifier: Notifier) -> None:
        self.config_path = config_path
        self.ingest = ingest
        self.notifier = notifier
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def run(self) -> None:
        try:
            while True:
                self.proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-c", "from dizimail.cli.main import main; main()", "queue", "run",
                    "--config", str(self.config_path), "--wake-stdin", stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE)
                self.starts += 1
                log.info("queue.runner.process.started pid=%d", self.proc.pid)
                loop = asyncio.get_running_loop()
                forward = loop.create_task(self._forward(self.proc))
                changes = loop.create_task(self._changes(self.proc))
                code = await self.proc.wait()
                forward.cancel()
                changes.cancel()
                log.warning("queue.runner.process.exited pid=%d code=%s; starting another", self.proc.pid, code)
                await asyncio.sleep(RESTART_DELAY)
        finally:
            await self.stop()

    async def _forward(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdin is not None
        while True:
            await self.ingest.queued.wait()
            self.ingest.queued.clear()
            try:
                proc.stdin.write(b"w")
                await proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                return
            await asyncio.sleep(0.005)  # coalesce a burst into one wake-up

    async def _changes(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while True:
            try:  # a line over the reader's limit (64 KiB) is dropped whole: ValueError
                line = await proc.stdout.readline()
                if not line:
                    return
                words = line.split()
                if len(words) > 1 and words[0] == b"changed":
                    self.notifier.changed([int(w) for w in words[1:]])
            except ValueError:
                log.warning("queue.runner.process.bad_line")

    async def stop(self) -> None:
        if self.proc is not None:
            await terminate([self.proc])


async def terminate(procs: list[asyncio.subprocess.Process], grace: float = 15.0) -> None:
    """SIGTERM to the children still running, SIGKILL to those still there after ``grace`` seconds."""
    running = [proc for proc in procs if proc.returncode is None]
    for proc in running:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    for proc in running:
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
