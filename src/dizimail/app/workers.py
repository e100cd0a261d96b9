"""SMTP worker processes (``server.smtp_workers``; DESIGN.md §1: a node that uses every core).

One Python process runs one core. Port 25 with every anti-spam layer and the virus scan costs several
milliseconds of CPU per message, so a node serving it alone stays on one core while the others idle.
With workers:

* The node keeps port 25's listening socket and admits every connection itself, as before: the
  per-IP and per-node limits count at accept, exactly, whatever process serves the session.
* An admitted connection goes over a Unix socket (SCM_RIGHTS) to the worker with the fewest
  connections (in turn among equals), which runs the whole session: every check, the commit, the
  reply. Not by client address: the inner server gets all its internet mail from one address, its
  gateway's, which would then keep one worker busy and the others idle (tried: `bench/compare.sh`'s
  smtp-source also sends from one address, and with two workers it went no faster than without).
  What a worker keeps about one client across its connections is therefore its share: the
  connection rate (``antispam.max_connection_rate``) is divided among the workers, and an early-talker
  test passed in one worker is taken again in another (once a day each). So is the memory the checks
  at the end of DATA may hold (``limits.max_check_memory``): the bound stays one for the node.
* Worker → node, on the same socket: ``ready``; ``closed IP`` (the node's count of that client goes
  down); ``changed ID ...`` (mailboxes that got mail: the node's IDLE and NOTIFY sessions are told);
  ``queued`` (the node wakes the queue runner); ``received N`` (messages taken in the last quarter
  second: the node's search indexer waits while a burst arrives, services.search.IndexPacer).
* A worker that dies is replaced. Its sessions end with it and their clients retry: nothing is
  acknowledged before it is committed. While no worker is ready, the node serves port 25 itself.
* Port 25 then offers no AUTH (:attr:`SmtpContext.mx_auth`): a worker's lockout counters would be
  its own. Users log in on submission and smtps, which the node serves.

Workers start after the node dropped root, so they could not read the TLS key (root's, 0600): the node
reads certificate and key at start and hands each worker a copy in an anonymous memory file.

Considered: ``SO_REUSEPORT`` listeners in every process (the kernel spreads one client's connections
over all of them, so no per-IP limit or rate could be exact without shared state) and a process per
connection (Postfix's model; a Python process costs tens of MB and a start of a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dizimail.app.build import open_node
from dizimail.app.memory import freeze_startup
from dizimail.app.runner import terminate
from dizimail.app.tls import server_context
from dizimail.config.schema import Config
from dizimail.net.listener import Listener
from dizimail.services.ingest import Ingest
from dizimail.services.limits import ConnectionLimiter
from dizimail.services.notify import Notifier
from dizimail.services.policy.facts import Mode
from dizimail.smtp.server import SmtpContext, smtp_listener

log = logging.getLogger("dizimail.app")
RESTART_DELAY = 1.0
MESSAGE = 4096  # bytes: the longest channel message (a "changed" line is cut into several)
RECEIVED_EVERY = 0.25  # seconds between a worker's counts of received messages


@dataclass
class _Worker:
    proc: asyncio.subprocess.Process
    channel: socket.socket
    ready: bool = False
    open: Counter[str] = field(default_factory=Counter)  # connections handed over, by client IP
    connections: int = 0


class SmtpWorkers:
    """The node's side: start ``count`` workers, hand them port 25's connections, hear from them."""

    def __init__(self, config_path: Path, count: int, listener: Listener, notifier: Notifier, ingest: Ingest,
                 tls_pem: bytes | None) -> None:
        self.config_path = config_path
        self.count = count
        self.listener = listener
        self.notifier = notifier
        self.ingest = ingest
        self.tls_pem = tls_pem
        self.workers: list[_Worker | None] = [None] * count
        self.starts = 0
        self.stopping = False
        self._turn = 0
        listener.hand_off = self.hand_off

    async def run(self) -> None:
        await asyncio.gather(*(self._keep(i) for i in range(self.count)))

    def hand_off(self, client: socket.socket, ip: str) -> bool:
        ready = [w for w in self.workers if w is not None and w.ready]
        if not ready:
            return False
        self._turn = (self._turn + 1) % len(ready)
        worker = min(ready[self._turn:] + ready[:self._turn], key=lambda w: w.connections)
        try:
            socket.send_fds(worker.channel, [b"mx " + ip.encode()], [client.fileno()], socket.MSG_DONTWAIT)
        except OSError:  # its queue is full or it is gone: served here
            return False
        worker.open[ip] += 1
        worker.connections += 1
        return True

    async def _keep(self, slot: int) -> None:
        loop = asyncio.get_running_loop()
        while not self.stopping:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            tls_fd = -1
            if self.tls_pem is not None:
                tls_fd = os.memfd_create("dizimail-tls")
                os.write(tls_fd, self.tls_pem)
            try:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-c", "from dizimail.cli.main import main; main()", "smtp-worker",
                    "--config", str(self.config_path), "--channel-fd", str(theirs.fileno()), "--tls-fd", str(tls_fd),
                    "--slot", str(slot), "--of", str(self.count),
                    stdin=asyncio.subprocess.DEVNULL,
                    pass_fds=(theirs.fileno(), *((tls_fd,) if tls_fd >= 0 else ())))
            finally:
                theirs.close()
                if tls_fd >= 0:
                    os.close(tls_fd)
            worker = self.workers[slot] = _Worker(proc, ours)
            self.starts += 1
            loop.add_reader(ours.fileno(), self._hear, worker)
            try:
                code = await proc.wait()
            finally:
                self._hear(worker)  # what it said before it left
                loop.remove_reader(ours.fileno())
                self.workers[slot] = None
                ours.close()
                for ip, n in worker.open.items():  # its sessions ended with it
                    for _ in range(n):
                        self.listener.handed_back(ip)
            if self.stopping:
                return
            log.warning("smtp.worker.exited pid=%d code=%s; starting another", proc.pid, code)
            await asyncio.sleep(RESTART_DELAY)

    def _hear(self, worker: _Worker) -> None:
        while True:
            try:
                data = worker.channel.recv(MESSAGE, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:  # the worker is gone; proc.wait() does the rest
                asyncio.get_running_loop().remove_reader(worker.channel.fileno())
                return
            verb, _, rest = data.partition(b" ")
            if verb == b"closed":
                ip = rest.decode("ascii", "replace")
                if worker.open[ip] > 0:
                    worker.open[ip] -= 1
                    worker.connections -= 1
                    if not worker.open[ip]:
                        del worker.open[ip]
                    self.listener.handed_back(ip)
            elif verb == b"changed":
                self.notifier.changed(int(w) for w in rest.split() if w.isdigit())
            elif verb == b"queued":
                self.ingest.queued.set()
            elif verb == b"received" and rest.isdigit():
                self.ingest.received += int(rest)
            elif verb == b"ready":
                worker.ready = True
                log.info("smtp.worker.ready pid=%d", worker.proc.pid)

    async def stop(self) -> None:
        self.stopping = True
        await terminate([w.proc for w in self.workers if w is not None])


def read_tls(config: Config) -> bytes | None:
    """The certificate chain and key as one PEM, read by the node (as root) for its workers."""
    cert, key = config.path(config.tls.cert_file), config.path(config.tls.key_file)
    if not (cert.exists() and key.exists()):
        return None
    return cert.read_bytes().rstrip(b"\n") + b"\n" + key.read_bytes()


def worker_share(config: Config, of: int) -> Config:
    """A worker's config: of the node-wide bounds a worker enforces alone, its 1/``of`` share (rounded up;
    a rate of 0 stays "no limit", and a message alone always fits the check memory anyway)."""
    def share(value: int) -> int:
        return value if value <= 0 else max(1, -(-value // max(of, 1)))
    return config.model_copy(update={
        "antispam": config.antispam.model_copy(
            update={"max_connection_rate": share(config.antispam.max_connection_rate)}),
        "limits": config.limits.model_copy(update={"max_check_memory": share(config.limits.max_check_memory)})})


async def run_worker(config: Config, channel_fd: int, tls_fd: int, slot: int, of: int) -> None:
    """``dizimail smtp-worker`` (started by ``serve``): serve the port 25 sessions the node hands over,
    until SIGTERM or the node's end of the channel closes. ``slot`` of ``of`` workers."""
    loop = asyncio.get_running_loop()
    config = worker_share(config, of)
    channel = socket.socket(fileno=channel_fd)
    tls = server_context(Path(f"/proc/self/fd/{tls_fd}"), Path(f"/proc/self/fd/{tls_fd}")) if tls_fd >= 0 else None
    if tls_fd >= 0:
        os.close(tls_fd)

    def tell(message: bytes) -> None:
        try:
            channel.send(message)
        except OSError:  # the node is gone: the channel's end stops this worker
            pass

    def changed(ids: set[int]) -> None:
        line = b"changed"
        for mailbox_id in sorted(ids):
            word = b" %d" % mailbox_id
            if len(line) + len(word) > MESSAGE:
                tell(line)
                line = b"changed"
            line += word
        tell(line)

    async with open_node(config) as (services, _stores):
        ctx = SmtpContext(config, services.accounts, services.policy, services.ingest, tls, mx_auth=False,
                          session_prefix=f"w{slot}s")
        # Admission is the node's: nothing is refused here, and an ended session is reported to it.
        listener = smtp_listener(ctx, Mode.MX, "", 0, limiter=ConnectionLimiter(1 << 30))
        listener.max_connections = 1 << 30
        listener.release = lambda ip: tell(b"closed " + ip.encode())
        services.notifier.forward = changed
        done = asyncio.Event()

        def adopt() -> None:
            while True:
                try:
                    message, fds, _flags, _addr = socket.recv_fds(channel, MESSAGE, 4, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    return
                except OSError:
                    message, fds = b"", []
                if not message and not fds:
                    loop.remove_reader(channel_fd)
                    done.set()
                    return
                ip = message.partition(b" ")[2].decode("ascii", "replace")
                for fd in fds:
                    listener.adopt(socket.socket(fileno=fd), ip)

        async def wake_runner() -> None:
            while True:
                await services.ingest.queued.wait()
                services.ingest.queued.clear()
                tell(b"queued")
                await asyncio.sleep(0.005)  # a burst is one wake-up

        told = services.ingest.received  # messages the node has heard of

        def count_received() -> None:
            nonlocal told
            if services.ingest.received != told:
                tell(b"received %d" % (services.ingest.received - told))
                told = services.ingest.received

        async def keep_counting() -> None:
            while True:
                await asyncio.sleep(RECEIVED_EVERY)
                count_received()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, done.set)
        loop.add_reader(channel_fd, adopt)
        waker = loop.create_task(wake_runner())
        counter = loop.create_task(keep_counting())
        freeze_startup()  # (app.memory: full collections walk only what sessions make)
        tell(b"ready")
        log.info("smtp.worker.started pid=%d", os.getpid())
        try:
            await done.wait()
        finally:
            waker.cancel()
            counter.cancel()
            await listener.stop()
            count_received()
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(channel_fd)
            await services.quarantine.close()
            channel.close()
