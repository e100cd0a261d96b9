"""Run a node: open services, bind the listeners its role enables, serve until signalled."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from contextlib import AsyncExitStack
from pathlib import Path

from dizimail.app import privileges
from dizimail.app.build import Services, Stores, make_runner, open_node
from dizimail.app.memory import freeze_startup, trim, tune_allocator
from dizimail.app.runner import RunnerProcess
from dizimail.app.tls import server_context
from dizimail.app.workers import SmtpWorkers, read_tls
from dizimail.config.schema import Config
from dizimail.imap.server import ImapContext, imap_listener
from dizimail.managesieve.server import SieveContext, managesieve_listener
from dizimail.net.listener import Listener
from dizimail.pop3.server import Pop3Context, pop3_listener
from dizimail.services.cancel import raise_if_cancelling
from dizimail.services.limits import ConnectionLimiter
from dizimail.services.policy.facts import Mode
from dizimail.services.queue.runner import QueueRunner
from dizimail.services.search import IndexPacer
from dizimail.smtp.server import SmtpContext, smtp_listener

log = logging.getLogger("dizimail.app")
STOP_GRACE = 10.0  # seconds a cancelled background task has to end when the node stops

ROLE_SERVICES = {
    "all-in-one": ("smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps", "managesieve", "https"),
    "inner": ("smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps", "managesieve", "https"),
    "gateway": ("smtp", "pop3", "pop3s", "imap", "imaps"),
}


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # "Context impl SQLiteImpl." at every start


class Node:
    """One running node: its services and listeners."""

    def __init__(self, config: Config, config_path: Path | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.listeners: list[Listener] = []
        self._stack = AsyncExitStack()
        self.services: Services | None = None
        self.stores: Stores | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.runner: QueueRunner | None = None
        self.runner_process: RunnerProcess | None = None
        self.workers: SmtpWorkers | None = None
        self.user: privileges.ServiceUser | None = None  # whom root becomes after binding

    async def start(self) -> None:
        """Open the stores, bind the ports. Started as root with ``server.run_as``: the setup is checked and
        handed over, the TLS key read as root, the stores opened as the service user (app.privileges);
        ``serve`` drops root for good once the ports are bound."""
        config = self.config
        self.user = privileges.service_user(config)
        if self.user is not None:
            privileges.prepare(config, self.config_path, self.user)
        cert, key = config.path(config.tls.cert_file), config.path(config.tls.key_file)
        tls = server_context(cert, key) if cert.exists() and key.exists() else None
        with privileges.acting_as(self.user):
            services, self.stores = await self._stack.enter_async_context(open_node(config, owner=True))
            self.services = services
            if sealed := await services.fetch.seal_stored():
                log.info("fetch.passwords.sealed count=%d", sealed)
        limiter = ConnectionLimiter(config.limits.max_connections_per_ip)
        workers = config.server.smtp_workers if self.config_path is not None else 0
        smtp_ctx = SmtpContext(config, services.accounts, services.policy, services.ingest, tls, mx_auth=not workers)
        pop3_ctx = Pop3Context(config, services.accounts, services.mailstore, tls)
        imap_ctx = ImapContext(config, services.accounts, services.folders, services.mailstore, services.ingest,
                               services.notifier, tls)
        for name in ROLE_SERVICES[config.server.role]:
            spec = getattr(config.listeners, name)
            if not spec.port:
                continue
            if name in ("smtps", "pop3s", "imaps", "https") and tls is None:
                log.warning("%s disabled: no TLS certificate", name)
                continue
            if name in ("smtp", "submission", "smtps"):
                listener = smtp_listener(smtp_ctx, Mode("mx" if name == "smtp" else name), spec.address, spec.port,
                                         limiter=limiter)
                if name == "smtp" and workers:
                    assert self.config_path is not None
                    self.workers = SmtpWorkers(self.config_path, workers, listener, services.notifier,
                                               services.ingest, read_tls(config) if tls is not None else None)
            elif name == "https":
                from dizimail.web.api import WebContext  # FastAPI is imported only where it is served
                from dizimail.web.server import https_listener

                assert tls is not None
                listener = https_listener(config, WebContext(services.accounts, services.tokens, services.admin,
                                                     services.routes, services.relay, services.dkim, services.queue,
                                                     services.access, services.quarantine, services.spam_settings,
                                                     services.fetch, services.secrets,
                                                     (config.delivery.concurrency,
                                                      config.delivery.destination_concurrency),
                                                     services.logins, services.traffic,
                                                     config.server.data_dir, services.profiles, services.sieve,
                                                     services.lists, services.list_mail, services.mail,
                                                     services.compose, services.contacts, services.prefs),
                                          spec.address,
                                          spec.port, tls, limiter=limiter)
            elif name == "managesieve":
                listener = managesieve_listener(SieveContext(config, services.accounts, services.sieve, tls),
                                                spec.address, spec.port, limiter=limiter)
            elif name in ("imap", "imaps"):
                listener = imap_listener(imap_ctx, name == "imaps", spec.address, spec.port, limiter=limiter)
            else:
                listener = pop3_listener(pop3_ctx, name == "pop3s", spec.address, spec.port, limiter=limiter)
            self.listeners.append(listener)
        try:
            for listener in self.listeners:
                await listener.start()
        except BaseException:
            await self.stop()
            raise
        self._tasks.append(asyncio.get_running_loop().create_task(self._sweeper(services)))
        self._tasks.append(asyncio.get_running_loop().create_task(self._indexer(services)))
        if config.delivery.runner == "process" and self.config_path is not None:
            self.runner_process = RunnerProcess(self.config_path, services.ingest, services.notifier)
            self._tasks.append(asyncio.get_running_loop().create_task(self.runner_process.run()))
        else:
            assert self.stores is not None
            self.runner = make_runner(config, services, self.stores)
            self._tasks.append(asyncio.get_running_loop().create_task(self.runner.run()))
        self._tasks.append(asyncio.get_running_loop().create_task(self._fetcher(services)))
        if self.workers is not None:  # started once root is dropped (serve), like the queue runner
            self._tasks.append(asyncio.get_running_loop().create_task(self.workers.run()))
        if services.scanner is not None:
            self._tasks.append(asyncio.get_running_loop().create_task(self._virus_self_check(services)))
        log.info("node.ready role=%s listeners=%d", config.server.role, len(self.listeners))

    async def _indexer(self, services: Services) -> None:
        """Search documents for new messages, in batches, off the SMTP path (DESIGN.md §3), paced so
        that a burst of mail is received first and indexed after (IndexPacer)."""
        interval = self.config.storage.index_interval
        pacer = IndexPacer(services.ingest.received, interval)
        while True:
            budget = pacer.budget(services.ingest.received)
            if budget is not None:
                try:
                    await services.mailstore.index_pending(budget)
                except Exception:  # retried at the next interval
                    raise_if_cancelling()
                    log.exception("search.index.failed")
            await asyncio.sleep(interval)  # at most one run a period

    async def _virus_self_check(self, services: Services) -> None:
        """clamd must still detect the EICAR test file: checked at start and every self_check_interval."""
        assert services.scanner is not None
        while True:
            try:
                await services.scanner.self_check()
            except Exception:  # logged; tried again at the next interval
                raise_if_cancelling()
                log.exception("antivirus.selfcheck.error")
            await asyncio.sleep(self.config.antivirus.self_check_interval)

    async def _fetcher(self, services: Services) -> None:
        """Poll the fetch accounts whose interval has passed (the gateway holding box, users' external mail)."""
        while True:
            await asyncio.sleep(self.config.fetch.check_interval)
            try:
                await services.fetch.run_due()
            except Exception:  # an account's failure is recorded on it; anything else is retried
                raise_if_cancelling()
                log.exception("fetch.run.failed")

    async def _sweeper(self, services: Services) -> None:
        """Periodic removal of quarantined mail past its time, of message files that lost their last
        reference (after a grace period), and of the allocator's free memory (app/memory.py)."""
        while True:
            await asyncio.sleep(self.config.storage.sweep_interval)
            trim()
            try:
                await services.quarantine.expire()
                await services.whitelist.expire()
                removed = await services.mailstore.sweep(self.config.storage.blob_grace)
            except Exception:  # a failed sweep is retried at the next interval
                raise_if_cancelling()
                log.exception("storage.sweep.failed")
                continue
            if removed:
                log.info("storage.sweep removed=%d", removed)

    async def stop(self) -> None:
        log.info("node.stopping")
        if self.workers is not None:
            await self.workers.stop()
        for task in self._tasks:
            task.cancel()
        await _ended(self._tasks, "node.task")
        await asyncio.gather(*(listener.stop() for listener in self.listeners), return_exceptions=True)
        if self.services is not None:
            await self.services.quarantine.close()
            log.info("node.stopped received=%d", self.services.ingest.received)  # its workers' included
        await self._stack.aclose()


async def _ended(tasks: list[asyncio.Task[None]], what: str) -> None:
    """Wait for cancelled tasks to end, at most STOP_GRACE seconds: a task that does not (a cancellation
    some library swallowed, services.cancel) is logged and left, never waited for for ever."""
    if not tasks:
        return
    _done, pending = await asyncio.wait(tasks, timeout=STOP_GRACE)
    for task in pending:
        log.error("%s.stuck task=%s: not ended %.0f s after cancel; stopping without it", what,
                  task.get_coro(), STOP_GRACE)


async def serve(config: Config, config_path: Path | None = None) -> None:
    """``dizimail serve``: print every listening port, then ``ready``; stop on SIGINT/SIGTERM."""
    tune_allocator()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    node = Node(config, config_path)
    await node.start()
    try:
        for listener in node.listeners:
            print(f"listening {listener.name} {listener.host}:{listener.port}", flush=True)
        privileges.become(node.user)
        log.info("memory.frozen objects=%d", freeze_startup())
        print("ready", flush=True)
        await stop.wait()
    finally:
        await node.stop()
