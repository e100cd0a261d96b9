"""The SQLite database: engine set-up, migrations, the group-commit writer and the read pool."""

from __future__ import annotations

import asyncio
import logging
import queue as stdqueue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import QueuePool

log = logging.getLogger("dizimail.storage")
T = TypeVar("T")
BUSY_TIMEOUT = 30.0  # seconds a writer waits for another process's write lock
_MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class _Job:
    fn: Callable[[Connection], Any]
    loop: asyncio.AbstractEventLoop | None
    future: Any
    sync_dirs: set[str] = field(default_factory=set)


def head_revision() -> str:
    """The newest migration's revision: migrations are a single chain named ``NNNN_what.py`` whose
    revision id is ``NNNN`` (tests/contract/test_sqlite_migrations.py holds Alembic to it)."""
    return max(p.name[:4] for p in (_MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


class SqliteDatabase:
    """Owns the engine, one writer thread and a read pool."""

    def __init__(self, path: Path, *, batch: int = 256, dir_syncer: Callable[[set[str]], None] | None = None,
                 read_threads: int = 4) -> None:
        self.path = path
        self._batch = batch
        self._dir_syncer = dir_syncer
        # Readers use deferred transactions (WAL snapshots); writers take the write lock up front
        # with BEGIN IMMEDIATE so that a CLI writing beside a running server waits instead of failing.
        self.engine = _engine(path, "BEGIN", read_threads + 2)
        self.write_engine = _engine(path, "BEGIN IMMEDIATE", 1)
        self._local = threading.local()
        self._quick_conns: list[sqlite3.Connection] = []
        self._jobs: stdqueue.SimpleQueue[_Job | None] = stdqueue.SimpleQueue()
        self._reader = ThreadPoolExecutor(max_workers=read_threads, thread_name_prefix="db-read")
        self._writer: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------
    def upgrade(self, revision: str = "head") -> None:
        """Apply Alembic migrations up to ``revision`` (idempotent). A database already at the head is
        left alone without loading Alembic (every command-line run opens the database: it starts
        about a tenth of a second sooner)."""
        if revision == "head" and self._current() == head_revision():
            return
        from alembic import command  # only when there is something to migrate
        from alembic.config import Config as AlembicConfig
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        with self.write_engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()

    def _current(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                return str(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one())
        except Exception:  # a new database (no table yet), or one Alembic must look at
            return None

    def revision(self) -> str:
        with self.engine.connect() as conn:
            return str(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one())

    def start(self) -> None:
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="db-writer", daemon=True)
            self._writer.start()

    def close(self) -> None:
        if self._writer is not None:
            self._jobs.put(None)
            self._writer.join()
            self._writer = None
        self._reader.shutdown(wait=True)
        for conn in self._quick_conns:
            try:
                conn.close()
            except sqlite3.ProgrammingError:  # owned by a thread that is gone
                pass
        self.engine.dispose()
        self.write_engine.dispose()

    # --- access ------------------------------------------------------------
    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` on a pooled connection in the read pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader, self._run_read, fn)

    def quick(self) -> sqlite3.Connection:
        """A raw autocommit connection owned by the calling thread, for indexed point reads.

        Such reads cost tens of microseconds from the page cache, less than a hop to the read
        pool, and WAL readers never wait for the writer; anything that scans runs in the pool.
        """
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
            _on_connect(conn, None)
            self._local.conn = conn
            self._quick_conns.append(conn)
        return conn

    def _run_read(self, fn: Callable[[Connection], T]) -> T:
        with self.engine.connect() as conn:
            result = fn(conn)
            conn.rollback()
            return result

    async def write(self, fn: Callable[[Connection], T], sync_dirs: set[str] | None = None) -> T:
        """Run ``fn(conn)`` inside the next group transaction; returns once it is durable.

        ``sync_dirs`` are fsynced (through the blob store) before the commit.
        """
        if self._writer is None:
            raise RuntimeError("database writer not started")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.put(_Job(fn, loop, future, sync_dirs or set()))
        return await future  # type: ignore[no-any-return]

    # --- the writer thread -------------------------------------------------
    def _write_loop(self) -> None:
        conn = self.write_engine.connect()
        try:
            while True:
                first = self._jobs.get()
                if first is None:
                    return
                batch = [first]
                stop = False
                while len(batch) < self._batch:
                    try:
                        job = self._jobs.get_nowait()
                    except stdqueue.Empty:
                        break
                    if job is None:
                        stop = True
                        break
                    batch.append(job)
                self._commit_batch(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _commit_batch(self, conn: Connection, batch: list[_Job]) -> None:
        outcomes: list[tuple[_Job, Any, BaseException | None]] = []
        try:
            with conn.begin():
                # Savepoints go straight to the driver: SQLAlchemy's nested transactions cost more
                # than the statements they wrap, and only the root transaction matters to it.
                raw = conn.connection.driver_connection
                assert raw is not None
                for job in batch:
                    raw.execute("SAVEPOINT job")
                    try:
                        value = job.fn(conn)
                    except Exception as exc:  # one job's failure stays with that job
                        raw.execute("ROLLBACK TO job")
                        raw.execute("RELEASE job")
                        outcomes.append((job, None, exc))
                    else:
                        raw.execute("RELEASE job")
                        outcomes.append((job, value, None))
                dirs = set().union(*(j.sync_dirs for j, _, e in outcomes if e is None))
                if dirs and self._dir_syncer is not None:
                    self._dir_syncer(dirs)
        except Exception as exc:  # the commit itself failed: nobody is durable
            log.exception("group commit of %d jobs failed", len(batch))
            outcomes = [(job, None, exc) for job in batch]
        for job, value, error in outcomes:
            _resolve(job, value, error)


def driver(conn: Connection) -> sqlite3.Connection:
    """The DBAPI connection under a SQLAlchemy one: hot paths and simple point statements run on it
    (SQLAlchemy Core costs more per statement than the statements themselves)."""
    raw = conn.connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    return raw


def _resolve(job: _Job, value: Any, error: BaseException | None) -> None:
    def set_result() -> None:
        if job.future.cancelled():
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(value)

    assert job.loop is not None
    try:
        job.loop.call_soon_threadsafe(set_result)
    except RuntimeError:  # loop closed during shutdown
        pass


def _engine(path: Path, begin: str, pool_size: int) -> Engine:
    engine = create_engine(f"sqlite:///{path}", poolclass=QueuePool, pool_size=pool_size, max_overflow=4,
                           connect_args={"check_same_thread": False, "timeout": 30})
    event.listen(engine, "connect", _on_connect)
    if begin == "BEGIN IMMEDIATE":
        event.listen(engine, "connect", _no_busy_sleep)
        event.listen(engine, "begin", _begin_immediate)
    else:
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql(begin))
    return engine


def _no_busy_sleep(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA busy_timeout=0")


def _begin_immediate(conn: Connection) -> None:
    """Take the write lock, polling every few hundred microseconds while another process holds it.

    SQLite's own busy handler sleeps 1, 2, 5 ... up to 100 ms between tries; with two processes writing
    (a node and its queue-runner process, or the command line) those sleeps, not the work, set the pace.
    """
    raw = conn.connection.driver_connection
    assert raw is not None
    deadline = time.monotonic() + BUSY_TIMEOUT
    delay = 0.0002
    while True:
        try:
            raw.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.002)


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself so SAVEPOINTs work (pysqlite's own handling breaks them).
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
    # Substring test in linear time for long search terms (SQLite's instr() compares the whole term at
    # each position of the text: term length x text length, both a user's to choose).
    dbapi_connection.create_function("dz_contains", 2, _contains, deterministic=True)


def _contains(text: str | None, term: str | None) -> int:
    return 0 if text is None or term is None else int(term in text)
