"""Shared fixtures: a real dizimail node on loopback ports, in a thread or as a subprocess."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import hypothesis  # noqa: F401  # imported (and assertion-rewritten) now, not at session end beside server threads
import pytest

from dizimail.app.build import Services, Stores
from dizimail.app.init import init_data_dir
from dizimail.app.node import Node
from dizimail.config.loader import load_config

T = TypeVar("T")
LISTENERS = ("smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps", "managesieve", "https")
DOMAIN = "example.test"
PASSWORD = "secret-password"
REPO = Path(__file__).resolve().parent.parent
DIZIMAIL = str(Path(sys.executable).parent / "dizimail")


def free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def client_tls() -> ssl.SSLContext:
    """Clients trust our self-signed certificate the way a user would after accepting it."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def write_config(data_dir: Path, extra: str = "", hostname: str = "mx.example.test") -> tuple[Path, dict[str, int]]:
    """Init a data directory (config, certificate, database, domain) with fresh loopback ports."""
    asyncio.run(init_data_dir(data_dir, hostname=hostname, role="all-in-one", listen="127.0.0.1",
                              port_base=None, domain=DOMAIN, demo=False))
    config_file = data_dir / "dizimail.toml"
    # In-thread nodes run the queue runner in their own loop (tests look at it); `extra` may add [delivery].
    text = config_file.read_text().replace('[delivery]\nrunner = "process"\n', "")
    ports = dict(zip(LISTENERS, free_ports(len(LISTENERS)), strict=True))
    for name in ("smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps", "managesieve", "https"):
        old = f'[listeners.{name}]\naddress = "127.0.0.1"\n'
        start = text.index(old) + len(old)
        end = text.index("\n", start)
        text = text[:start] + f"port = {ports.get(name, 0)}" + text[end:]
    # Cheap hashing keeps the suite fast; production defaults are exercised in unit tests.
    text += "\n[auth]\nargon2_time_cost = 1\nargon2_memory_cost = 1024\n" + extra
    if "[delivery]" not in extra:
        # Nothing leaves loopback: mail for other domains goes to a port where nobody listens (it waits
        # in the queue, deferred); tests of delivery configure their own peers.
        text += f'\n[delivery]\nsmarthost = "127.0.0.1:{free_ports(1)[0]}"\n'
    config_file.write_text(text)
    return config_file, ports


class ServerThread:
    """A node running in its own event loop thread; tests talk to it over real sockets."""

    def __init__(self, config_file: Path, ports: dict[str, int]) -> None:
        self.config_file = config_file
        self.config = load_config(config_file)
        self.ports = ports
        self.loop = asyncio.new_event_loop()
        self.node = Node(self.config)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()
        self.run(self.node.start())

    def run(self, coro: Awaitable[T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        return future.result(60)

    def call(self, fn: Callable[[Services], Awaitable[T]]) -> T:
        assert self.node.services is not None
        return self.run(fn(self.node.services))

    def call_stores(self, fn: Callable[[Stores], Awaitable[T]]) -> T:
        """For tests that seed or inspect storage directly (as an older version or another node would)."""
        assert self.node.stores is not None
        return self.run(fn(self.node.stores))

    def add_user(self, local: str, quota: int = 0, password: str = PASSWORD) -> str:
        address = f"{local}@{DOMAIN}"
        self.call(lambda s: s.accounts.add_user(address, password, local, quota))
        return address

    def stop(self) -> None:
        self.run(self.node.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def start_server(tmp: Path, extra: str = "", hostname: str = "mx.example.test") -> ServerThread:
    """``hostname``: nodes that deliver to each other need names of their own (a next hop that names
    itself as we do is a mail loop, and the message bounces)."""
    config_file, ports = write_config(tmp, extra, hostname)
    server = ServerThread(config_file, ports)
    server.start()
    return server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    srv = start_server(tmp_path_factory.mktemp("node"))
    yield srv
    srv.stop()


def dizimail_cli(config_file: Path, *args: str, input: str | None = None,
                 check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real command line, as an admin would."""
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    return subprocess.run([DIZIMAIL, *args, "--config", str(config_file)], capture_output=True, text=True,
                          input=input, check=check, env=env, timeout=300)


_counter = iter(range(1, 1_000_000))


@pytest.fixture
def user(server: ServerThread) -> str:
    """A fresh local user on the module's server."""
    return server.add_user(f"u{os.getpid()}x{next(_counter)}")


def pytest_collection_modifyitems(items: list[Any]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath) or "/durability/" in str(item.fspath):
            item.add_marker(pytest.mark.slow)
