"""``dizimail init`` and ``dizimail serve``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
import uvloop

from dizimail.app.build import open_database
from dizimail.app.init import InitError, default_hostname, init_data_dir
from dizimail.app.privileges import UnsafeDataDir
from dizimail.cli.common import ConfigOpt, app, as_service_user, console, fail, load_or_fail
from dizimail.config.loader import default_config_path
from dizimail.i18n import translate
from dizimail.model.errors import MailError


@app.command("init")
def init_cmd(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="where config, database and mail live")] = Path("var"),
    domain: Annotated[str | None, typer.Option("--domain", help="first local domain")] = None,
    port_base: Annotated[int | None, typer.Option("--port-base", help="listen on N+25, N+587, ... "
                                                                       "(unprivileged ports)")] = None,
    hostname: Annotated[str | None, typer.Option("--hostname", help="this server's name in greetings, Received: "
                                                                    "and its certificate (default: the machine's "
                                                                    "fully qualified name)")] = None,
    role: Annotated[str, typer.Option("--role", help="all-in-one, inner or gateway")] = "all-in-one",
    listen: Annotated[str, typer.Option("--listen", help="address to bind")] = "127.0.0.1",
    demo: Annotated[bool, typer.Option("--demo", help="create example.test with two demo users")] = False,
    smarthost: Annotated[str, typer.Option("--smarthost", help="inner: HOST:PORT of the gateway that takes "
                                                               "all outbound mail")] = "",
    inner: Annotated[str, typer.Option("--inner", help="gateway: HOST:PORT of the inner server; --domain's mail "
                                                       "is pushed there and it may relay")] = "",
    poll: Annotated[bool, typer.Option("--poll", help="gateway: hold --domain's mail for the inner server to "
                                                      "fetch instead of pushing it")] = False,
) -> None:
    """Create a data directory: config, self-signed TLS certificate, database (and a demo domain)."""
    if role not in ("all-in-one", "inner", "gateway"):
        fail(f"unknown role {role!r}", 2)
    try:
        result = asyncio.run(init_data_dir(data_dir, hostname=hostname or default_hostname(), role=role,
                                           listen=listen, port_base=port_base, domain=domain, demo=demo,
                                           smarthost=smarthost, inner=inner, poll=poll))
    except InitError as exc:
        fail(str(exc), 2)
        return
    except FileExistsError as exc:
        fail(str(exc))
        return
    except MailError as exc:
        fail(f"{translate(exc.public_key)}{f' ({exc.detail})' if exc.detail else ''}; nothing was created")
        return
    console.print(f"created {result.config_file}")
    for address, password in result.demo_passwords.items():
        console.print(f"user {address}  password {password}  (shown once)")
    if demo:
        console.print("the first user administers: https://127.0.0.1:<port base + 443>/admin/ (its mail password)")


@app.command("serve")
def serve_cmd(config: ConfigOpt = None) -> None:
    """Run this node's listeners in the foreground until Ctrl-C or SIGTERM."""
    cfg = load_or_fail(config)
    from dizimail.app.node import serve, setup_logging  # the front-ends: only the serving command needs them
    from dizimail.net.listener import ListenError
    setup_logging(cfg.server.log_level)
    try:
        uvloop.run(serve(cfg, (config or default_config_path()).resolve()))
    except (ListenError, UnsafeDataDir) as exc:
        fail(str(exc))


@app.command("smtp-worker", hidden=True)
def smtp_worker_cmd(channel_fd: Annotated[int, typer.Option("--channel-fd")],
                    tls_fd: Annotated[int, typer.Option("--tls-fd")] = -1,
                    slot: Annotated[int, typer.Option("--slot")] = 0, of: Annotated[int, typer.Option("--of")] = 1,
                    config: ConfigOpt = None) -> None:
    """One of the node's SMTP workers (server.smtp_workers): started by `serve`, not by hand."""
    cfg = load_or_fail(config)
    from dizimail.app.node import setup_logging
    from dizimail.app.workers import run_worker
    as_service_user(cfg, config)
    setup_logging(cfg.server.log_level)
    uvloop.run(run_worker(cfg, channel_fd, tls_fd, slot, of))


@app.command("upgrade")
def upgrade_cmd(config: ConfigOpt = None) -> None:
    """Apply database schema migrations (also done at every start)."""
    cfg = load_or_fail(config)
    as_service_user(cfg, config)
    db, _blobs = open_database(cfg)
    revision = db.revision()
    db.close()
    console.print(f"database schema at revision {revision}")
