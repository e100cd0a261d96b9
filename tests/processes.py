"""``dizimail serve`` as a real child process, for tests that kill, stop and restart nodes."""

from __future__ import annotations

import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

from conftest import DIZIMAIL

STEP_TIMEOUT = 30.0


class ServerProcess:
    """``dizimail serve`` as a real child process, its stderr kept in a log file."""

    def __init__(self, config_file: Path, log_path: Path) -> None:
        self.log_path = log_path
        self.log = log_path.open("ab")
        self.proc = subprocess.Popen([DIZIMAIL, "serve", "--config", str(config_file)], stdout=subprocess.PIPE,
                                     stderr=self.log, stdin=subprocess.DEVNULL)
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(b"")

    def wait_ready(self, timeout: float = STEP_TIMEOUT) -> list[str]:
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"server not ready after {timeout}s; stdout={seen}; log:\n{self.tail()}") from None
            if not line:
                raise AssertionError(f"server exited ({self.proc.poll()}) before ready; stdout={seen}; "
                                     f"log:\n{self.tail()}")
            seen.append(line.decode(errors="replace").strip())
            if seen[-1] == "ready":
                return seen

    def stop(self) -> None:
        """SIGTERM: a clean shutdown."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        try:
            self.proc.wait(10)
        finally:
            self.pump.join(10)  # EOF once the process is gone
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.log.close()

    def tail(self, n: int = 40) -> str:
        self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])


@contextmanager
def serving(config_file: Path, ports: dict[str, int], log_path: Path) -> Iterator[SimpleNamespace]:
    """``dizimail serve`` on a data directory made by conftest.write_config, until the block ends: for
    tests that measure the node's latency (in the test's own process it would share the interpreter,
    its GIL and its collector's pauses, with the test's client threads). Yields what the helpers use of
    a ServerThread: ``ports`` and ``config_file``."""
    node = ServerProcess(config_file, log_path)
    try:
        node.wait_ready()
        yield SimpleNamespace(ports=ports, config_file=config_file, process=node)
    finally:
        node.stop()
