"""A mailing list post to N local members (issue #12): how long the poster waits for the 250 (the copies
of every member are committed before it), and what one post costs in storage (one blob, N rows).

    .venv/bin/python bench/list_post.py --members 5000 --posts 20

A node runs in this process on a fresh data directory (SQLite, loopback ports from --port-base); posts are
sent one after another over SMTP with smtplib. Prints figures; asserts nothing."""

from __future__ import annotations

import argparse
import asyncio
import resource
import smtplib
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path

from dizimail.app.init import init_data_dir
from dizimail.app.node import Node
from dizimail.config.loader import load_config

DOMAIN = "bench.test"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--posts", type=int, default=20)
    parser.add_argument("--size", type=int, default=4000, help="bytes of body per post")
    parser.add_argument("--port-base", type=int, default=32000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="list-bench-") as tmp:
        data = Path(tmp)
        asyncio.run(init_data_dir(data, hostname="mx.bench.test", role="all-in-one", listen="127.0.0.1",
                                  port_base=args.port_base, domain=DOMAIN, demo=False))
        config_file = data / "dizimail.toml"
        config_file.write_text(config_file.read_text().replace('[delivery]\nrunner = "process"\n', "")
                               + "\n[auth]\nargon2_time_cost = 1\nargon2_memory_cost = 1024\n")
        config = load_config(config_file)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        node = Node(config)

        def call(coro):  # type: ignore[no-untyped-def]
            return asyncio.run_coroutine_threadsafe(coro, loop).result(600)
        call(node.start())
        services = node.services
        assert services is not None
        started = time.monotonic()

        async def seed() -> None:
            for i in range(args.members):
                await services.accounts.add_user(f"m{i:05d}@{DOMAIN}", "bench-password", "", 0)
            await services.lists.create(f"all@{DOMAIN}", policy="anyone", members=[f"@{DOMAIN}"])
        call(seed())
        print(f"seeded {args.members} members in {time.monotonic() - started:.1f} s")
        port = config.listeners.smtp.port
        body = ("正文 body line " * 8 + "\r\n") * max(1, args.size // 150)
        waits = []
        with smtplib.SMTP("127.0.0.1", port, timeout=600) as smtp:
            for n in range(args.posts):
                message = (f"From: poster@outside.test\r\nTo: all@{DOMAIN}\r\nSubject: post {n}\r\n"
                           f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}").encode()
                t0 = time.perf_counter()
                smtp.sendmail("poster@outside.test", [f"all@{DOMAIN}"], message)
                waits.append(time.perf_counter() - t0)
        rows = blobs = 0
        with sqlite3.connect(config.path(config.storage.database)) as conn:
            rows = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
            blobs = conn.execute("SELECT count(DISTINCT blob_id) FROM messages").fetchone()[0]
        call(node.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        waits.sort()
        total = sum(waits)
        print(f"posts={args.posts} members={args.members} size~{len(message)} B")
        print(f"250 wait per post: median {statistics.median(waits) * 1000:.0f} ms, "
              f"p90 {waits[int(len(waits) * 0.9) - 1] * 1000:.0f} ms, max {waits[-1] * 1000:.0f} ms")
        print(f"member copies committed: {args.posts * args.members / total:,.0f} per second")
        print(f"storage: {blobs} blobs, {rows} mailbox rows ({rows / max(1, blobs):.0f} per blob)")
        print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
