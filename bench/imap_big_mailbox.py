"""One mailbox of N messages (default 100,000): how long SELECT takes, how FETCH 1:* (FLAGS) streams.

    .venv/bin/python bench/imap_big_mailbox.py [--messages 100000]

Fills the mailbox through the storage API (one shared blob, index rows in batches of 1,000),
starts `dizimail serve` as a subprocess and measures over a real IMAP connection: the first SELECT
(which claims the messages as \\Recent, a write), then SELECT latency (median of 5), STATUS latency (median
of 5), FETCH 1:* (FLAGS)
duration and the server's RSS before it and at its peak during it (sampled every 2 ms). The data
directory is removed afterwards unless --keep is given.
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from dizimail.app.build import open_node
from dizimail.app.init import init_data_dir
from dizimail.config.loader import load_config
from dizimail.model.types import IngestRecord, LocalDelivery


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def fill(config_path: Path, n: int) -> None:
    config = load_config(config_path)
    async with open_node(config) as (s, stores):
        await s.accounts.add_domain("big.test")
        await s.accounts.add_user("big@big.test", "pw")
        account = await s.accounts.get_user("big@big.test")
        writer = stores.blobs.writer()
        writer.write(b"Subject: one of many\r\nFrom: a@b.test\r\n\r\nbody\r\n")
        blob = writer.finish()
        for start in range(0, n, 1000):
            count = min(1000, n - start)
            deliveries = tuple(LocalDelivery(account.id, account.address, "INBOX", b"", ("\\Seen",) if i % 3 else ())
                               for i in range(count))
            await stores.meta.commit_ingest(IngestRecord(f"BIG{start}", blob, "", time.time(), deliveries))


def raw_fetch_ms(port: int) -> tuple[float, int]:
    """FETCH 1:* (FLAGS) over a plain socket that only looks for the tagged reply: the server's
    own pace, without imaplib's parsing in the figure. Returns (ms, bytes received)."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        reader = s.makefile("rb")
        reader.readline()
        for line in (b"a LOGIN big@big.test pw\r\n", b"b SELECT INBOX\r\n"):
            s.sendall(line)
            while not reader.readline().startswith(line[:2]):
                pass
        t = time.perf_counter()
        s.sendall(b"c FETCH 1:* (FLAGS)\r\n")
        received = 0
        while not (line := reader.readline()).startswith(b"c "):
            received += len(line)
        return (time.perf_counter() - t) * 1000, received


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class PeakRss:
    """The highest RSS of a process while the block runs, sampled every 2 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, rss_kb(self.pid))

    def __enter__(self) -> PeakRss:
        self.peak = rss_kb(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_kb(self.pid))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--keep", action="store_true", help="keep the data directory")
    a = p.parse_args()
    data = Path(tempfile.mkdtemp(prefix="dz-big-"))
    asyncio.run(init_data_dir(data, hostname="big.test", role="all-in-one", listen="127.0.0.1", port_base=None,
                              domain=None, demo=False))
    config = data / "dizimail.toml"
    port = free_port()
    text = config.read_text()
    for name in ("smtp", "submission", "smtps", "pop3", "pop3s", "imaps"):
        text = text.replace(f'[listeners.{name}]\naddress = "127.0.0.1"\nport = ', f'[listeners.{name}]\naddress = "127.0.0.1"\nport = 0#')
    text = text.replace('[listeners.imap]\naddress = "127.0.0.1"\nport = 143', f'[listeners.imap]\naddress = "127.0.0.1"\nport = {port}')
    text += '\n[auth]\nplaintext_networks = ["127.0.0.0/8"]\n'
    config.write_text(text)
    started = time.monotonic()
    asyncio.run(fill(config, a.messages))
    print(f"filled {a.messages} messages in {time.monotonic() - started:.1f}s")
    server = subprocess.Popen([str(Path(sys.executable).parent / "dizimail"), "serve", "--config", str(config)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in server.stdout:  # type: ignore[union-attr]
            if line.strip() == "ready":
                break
        conn = imaplib.IMAP4("127.0.0.1", port)
        conn.login("big@big.test", "pw")
        print(f"server RSS after login: {rss_kb(server.pid) // 1024} MB")
        t = time.perf_counter()
        conn.select("INBOX")
        first = (time.perf_counter() - t) * 1000
        conn.close()
        times = []
        for _ in range(5):
            t = time.perf_counter()
            typ, data_ = conn.select("INBOX")
            times.append((time.perf_counter() - t) * 1000)
            conn.close()
        print(f"SELECT of {data_[0].decode()} messages: first {first:.1f} ms (claims \\Recent), then median "
              f"{statistics.median(times):.1f} ms (min {min(times):.1f}, max {max(times):.1f}); "
              f"server RSS {rss_kb(server.pid) // 1024} MB")
        times = []
        for _ in range(5):
            t = time.perf_counter()
            typ, status = conn.status("INBOX", "(MESSAGES UNSEEN RECENT SIZE)")
            times.append((time.perf_counter() - t) * 1000)
        print(f"STATUS (MESSAGES UNSEEN RECENT SIZE): median {statistics.median(times):.1f} ms "
              f"({status[0].decode()})")
        conn.select("INBOX")
        before = rss_kb(server.pid)
        with PeakRss(server.pid) as peak:
            t = time.perf_counter()
            typ, fetched = conn.fetch("1:*", "(FLAGS)")
            elapsed = time.perf_counter() - t
        print(f"FETCH 1:* (FLAGS): {len(fetched)} responses in {elapsed * 1000:.0f} ms; "
              f"server RSS {before // 1024} MB before, peak {peak.peak // 1024} MB during")
        conn.logout()
        runs = [raw_fetch_ms(port) for _ in range(3)]
        print(f"FETCH 1:* (FLAGS) over a plain socket: median {statistics.median(r[0] for r in runs):.0f} ms "
              f"for {runs[0][1]} bytes")
    finally:
        server.terminate()
        server.wait(30)
        if not a.keep:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
