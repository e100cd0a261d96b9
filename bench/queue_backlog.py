"""How long one lease of the queue runner takes with a backlog of deferred mail all due at once (after
an outage of the next hop): issue #9's finding that the lease query was quadratic in the backlog.

    .venv/bin/python bench/queue_backlog.py [--sizes 1000,5000,20000,100000]

Creates a fresh data directory per size, puts N messages with one deferred recipient each straight into
the queue tables (one transaction; the blob is not needed for a lease), then times
``SqliteQueueStore.lease(limit=20)`` (median of 5, each on a new owner with the earlier leases
released) and prints the query plan. Stdlib plus dizimail.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from dizimail.app.build import open_database
from dizimail.config.schema import Config, ServerConfig
from dizimail.storage.sqlite.queue import _DUE, SqliteQueueStore


async def one(size: int) -> tuple[float, list[str]]:
    with tempfile.TemporaryDirectory(prefix="dzqueue.") as tmp:
        db, _blobs = open_database(Config(server=ServerConfig(data_dir=Path(tmp))))
        db.start()
        try:
            now = time.time()

            def fill(conn) -> None:  # type: ignore[no-untyped-def]
                raw = conn.connection.driver_connection
                raw.executemany("INSERT INTO queue (id, blob_id, sender, size, created, params, prefix) "
                                "VALUES (?, 'b', 's@example.test', 1, ?, '', x'')",
                                [(f"Q{i:09d}", now - size + i) for i in range(size)])
                raw.executemany("INSERT INTO queue_recipients (queue_id, address, status, attempts, next_attempt, "
                                "last_error) VALUES (?, 'r@remote.test', 'deferred', 1, ?, '451 later')",
                                [(f"Q{i:09d}", now - 60) for i in range(size)])
            await db.write(fill)
            store = SqliteQueueStore(db)
            times = []
            for run in range(5):
                started = time.perf_counter()
                leased = await store.lease(f"bench{run}", time.time(), time.time() + 300, 20)
                times.append((time.perf_counter() - started) * 1000)
                assert len(leased) == 20
                await store.release_all(f"bench{run}")
            plan = [r[3] for r in db.quick().execute("EXPLAIN QUERY PLAN " + _DUE, (now, now, 20))]
            return statistics.median(times), plan
        finally:
            db.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,5000,20000,100000")
    sizes = [int(s) for s in ap.parse_args().sizes.split(",")]
    for size in sizes:
        ms, plan = asyncio.run(one(size))
        print(f"backlog {size:>7}: lease of 20 in {ms:8.2f} ms (median of 5)   plan: {' / '.join(plan)}", flush=True)


if __name__ == "__main__":
    main()
