"""``dizimail init``: a data directory with config, certificate, database and (optionally) a demo."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from dizimail.app.build import Services, open_database, open_services
from dizimail.app.tls import make_self_signed
from dizimail.config.loader import load_config
from dizimail.config.schema import PORT_OFFSETS, SERVICES
from dizimail.model.errors import MailError

CONFIG_NAME = "dizimail.toml"
DEMO_USERS = ("alice", "bob")


@dataclass
class InitResult:
    config_file: Path
    demo_passwords: dict[str, str] = field(default_factory=dict)


def render_config(*, hostname: str, role: str, listen: str, port_base: int | None, smarthost: str = "") -> str:
    lines = ["# dizimail configuration (docs/config.md lists every key)", "", "[server]",
             f'role = "{role}"', f'hostname = "{hostname}"', 'data_dir = "."', ""]
    for name in SERVICES:
        if port_base is None:
            port = PORT_OFFSETS[name] if name not in ("managesieve", "https") else 0
        else:
            port = port_base + PORT_OFFSETS[name]
        lines += [f"[listeners.{name}]", f'address = "{listen}"', f"port = {port}", ""]
    lines += ["[tls]", 'cert_file = "tls/cert.pem"', 'key_file = "tls/key.pem"', "",
              "[storage]", 'database = "dizimail.db"', 'blob_dir = "blobs"', 'spool_dir = "spool"', ""]
    lines += ["[delivery]", "# the queue runner works in its own process: the node's second core", 'runner = "process"']
    if smarthost:
        lines += ["# every message for a domain that is not ours goes here (the gateway)", f'smarthost = "{smarthost}"']
    lines.append("")
    return "\n".join(lines)


async def init_data_dir(data_dir: Path, *, hostname: str, role: str, listen: str, port_base: int | None,
                        domain: str | None, demo: bool, smarthost: str = "", inner: str = "",
                        poll: bool = False) -> InitResult:
    """A new data directory. ``inner``: on a gateway, push ``domain`` to that HOST:PORT and let it relay;
    ``poll``: on a gateway, keep ``domain``'s mail in a holding mailbox for the inner server to fetch."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config_file = data_dir / CONFIG_NAME
    if config_file.exists():
        raise FileExistsError(f"{config_file} exists already; remove it or pick another --data-dir")
    config_file.write_text(render_config(hostname=hostname, role=role, listen=listen, port_base=port_base,
                                         smarthost=smarthost), encoding="utf-8")
    config = load_config(config_file)
    make_self_signed(config.path(config.tls.cert_file), config.path(config.tls.key_file), hostname)
    db, _ = open_database(config)
    db.close()
    result = InitResult(config_file)
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
    return result


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
