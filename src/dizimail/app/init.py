"""``dizimail init``: a data directory with config, certificate, database and (optionally) a demo.

The config is written by a TOML writer (tomli-w), never by pasting values into text. A failed init
removes what it created, so the next attempt starts clean; a directory that existed keeps everything
it held before.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from dizimail.app.build import Services, open_database, open_services
from dizimail.app.tls import make_self_signed, write_new
from dizimail.config.loader import load_config
from dizimail.config.schema import PORT_OFFSETS, SERVICES, Config
from dizimail.model.errors import MailError
from dizimail.model.tokens import Role
from dizimail.storage.fs.keyfile import load_or_create_key
from dizimail.util.idn import ascii_domain

CONFIG_NAME = "dizimail.toml"
DEMO_USERS = ("alice", "bob")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.IGNORECASE)
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class InitError(Exception):
    """A bad argument to ``init`` (nothing was created)."""


@dataclass
class InitResult:
    config_file: Path
    demo_passwords: dict[str, str] = field(default_factory=dict)


def check_hostname(name: str) -> str:
    """A host name (RFC 1123 §2.1): letters, digits and hyphens in dot-separated labels; an internationalised
    one (邮件.电力.cn) in its A-labels, as greetings, Received fields and the certificate need it."""
    try:
        name = ascii_domain(name)
    except ValueError:
        raise InitError(f"invalid host name {name!r}: not a domain name") from None
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise InitError(f"invalid host name {name!r}: use letters, digits, hyphens and dots (e.g. mail.example.com)")
    return name


def default_hostname() -> str:
    """This machine's fully qualified name; its short name when the resolver knows no better; else localhost."""
    for candidate in (socket.getfqdn(), socket.gethostname()):
        try:
            name = check_hostname(candidate)
        except InitError:
            continue
        if name not in ("localhost", "localhost.localdomain", "ip6-localhost"):
            return name
    return "localhost"


def listen_addresses(listen: str, hostname: str) -> list[IpAddress]:
    """The addresses clients reach the node at, for the certificate's IP SANs: the one it binds, or for
    0.0.0.0/:: the addresses its names resolve to."""
    try:
        address = ipaddress.ip_address(listen)
    except ValueError as exc:
        raise InitError(f"--listen {listen!r} is not an IP address") from exc
    if not address.is_unspecified:
        return [address]
    found: list[IpAddress] = [ipaddress.ip_address("127.0.0.1")]
    if address.version == 6:
        found.append(ipaddress.ip_address("::1"))
    for name in dict.fromkeys([hostname, socket.gethostname()]):
        try:
            infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except OSError:
            continue
        found += [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos]
    return list(dict.fromkeys(found))


def render_config(*, hostname: str, role: str, listen: str, port_base: int | None, smarthost: str = "") -> str:
    document: dict[str, Any] = {"server": {"role": role, "hostname": hostname, "data_dir": "."}, "listeners": {}}
    for name in SERVICES:
        if port_base is None:
            port = PORT_OFFSETS[name]
        else:
            port = port_base + PORT_OFFSETS[name]
        document["listeners"][name] = {"address": listen, "port": port}
    document["tls"] = {"cert_file": "tls/cert.pem", "key_file": "tls/key.pem"}
    document["storage"] = {"database": "dizimail.db", "blob_dir": "blobs", "spool_dir": "spool",
                           "master_key": "secrets/master.key"}
    document["delivery"] = {"runner": "process"}
    if smarthost:
        document["delivery"]["smarthost"] = smarthost
    head = ["# dizimail configuration (docs/config.md lists every key)",
            "# delivery.runner = \"process\": the queue runner works in its own process, the node's second core",
            "# delivery.smarthost: every message for a domain that is not ours goes there (the gateway)", ""]
    return "\n".join(head) + tomli_w.dumps(document)


async def init_data_dir(data_dir: Path, *, hostname: str, role: str, listen: str, port_base: int | None,
                        domain: str | None, demo: bool, smarthost: str = "", inner: str = "",
                        poll: bool = False) -> InitResult:
    """A new data directory. ``inner``: on a gateway, push ``domain`` to that HOST:PORT and let it relay;
    ``poll``: on a gateway, keep ``domain``'s mail in a holding mailbox for the inner server to fetch.
    Raises InitError for bad arguments (before anything is created), FileExistsError if a config is
    there already; any failure afterwards removes what this call created."""
    hostname = check_hostname(hostname)
    addresses = listen_addresses(listen, hostname)
    config_file = data_dir / CONFIG_NAME
    if config_file.exists() or config_file.is_symlink():
        raise FileExistsError(f"{config_file} exists already; remove it or pick another --data-dir")
    undo = _Undo(data_dir)
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_new(config_file, render_config(hostname=hostname, role=role, listen=listen, port_base=port_base,
                                             smarthost=smarthost).encode(), 0o600)
        config = load_config(config_file)
        make_self_signed(config.path(config.tls.cert_file), config.path(config.tls.key_file), hostname, addresses)
        load_or_create_key(config.path(config.storage.master_key))
        db, _ = open_database(config)
        db.close()
        return await _populate(config, InitResult(config_file), hostname=hostname, role=role, domain=domain,
                               demo=demo, inner=inner, poll=poll)
    except BaseException:
        undo.run()
        raise


async def _populate(config: Config, result: InitResult, *, hostname: str, role: str, domain: str | None, demo: bool,
                    inner: str, poll: bool) -> InitResult:
    if role == "gateway":
        if domain:
            async with open_services(config) as services:
                await _gateway(services, result, domain, hostname, inner, poll)
        return result
    if domain or demo:
        async with open_services(config) as services:
            name = domain or "example.test"
            await services.accounts.add_domain(name)
            if demo:
                for user in DEMO_USERS:
                    password = secrets.token_urlsafe(12)
                    await services.accounts.add_user(f"{user}@{name}", password, user.capitalize(), 1 << 30)
                    result.demo_passwords[f"{user}@{name}"] = password
                await services.accounts.add_alias(f"postmaster@{name}", [f"alice@{name}"])
                await services.logins.grant(f"alice@{name}", Role.ADMIN, [])  # the demo's administrator
    return result


class _Undo:
    """Remembers what existed before init, to remove only what init added."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        top = data_dir  # the highest directory init is about to create (parents=True)
        while not top.parent.exists() and top.parent != top:
            top = top.parent
        self.created_top = None if data_dir.exists() else top
        self.before = set(os.listdir(data_dir)) if data_dir.is_dir() else set()

    def run(self) -> None:
        if self.created_top is not None:
            shutil.rmtree(self.created_top, ignore_errors=True)
            return
        for name in set(os.listdir(self.data_dir)) - self.before:
            path = self.data_dir / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


async def _gateway(services: Services, result: InitResult, domain: str, hostname: str, inner: str,
                   poll: bool) -> None:
    """The organisation's domain is routed, not local: pushed to the inner server, or held for it."""
    if poll:
        await services.accounts.add_domain(hostname)
        holder = f"inbound@{hostname}"
        password = secrets.token_urlsafe(16)
        await services.accounts.add_user(holder, password, "Holding mailbox", 0)
        await services.routes.add(domain, f"hold:{holder}")
        result.demo_passwords[holder] = password
    elif inner:
        await services.routes.add(domain, inner)
    if inner:
        host = inner.rpartition(":")[0] if inner.count(":") == 1 else inner
        try:
            await services.relay.allow(host.strip("[]"))
        except MailError:
            pass  # a host name: the operator lists the inner server's network with `dizimail relay allow`
