"""``dizimail route|relay|dkim``: the two-network tables (take effect on a running server, no restart)."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from dizimail.cli.common import ConfigOpt, app, cli_actor, console, fail, run
from dizimail.cli.output import JsonOpt, print_json, print_table
from dizimail.model.errors import MailError
from dizimail.services.dkim import record_name, txt_record

route_app = typer.Typer(help="The mail routing table: DOMAIN → HOST[:PORT] or hold:USER.", no_args_is_help=True)
relay_app = typer.Typer(help="Client networks allowed to relay through this server (e.g. the inner server).",
                        no_args_is_help=True)
dkim_app = typer.Typer(help="DKIM signing keys.", no_args_is_help=True)
app.add_typer(route_app, name="route")
app.add_typer(relay_app, name="relay")
app.add_typer(dkim_app, name="dkim")


@route_app.command("add")
def route_add(domain: Annotated[str, typer.Argument(help='a domain, or "*" for every domain without a route')],
              target: Annotated[str, typer.Argument(help="HOST[:PORT] (port 25 by default) or hold:USER")],
              config: ConfigOpt = None) -> None:
    """Send DOMAIN's mail to HOST[:PORT] (push), or keep it in USER's mailbox to be fetched (poll).

    Used before the smarthost and DNS, and also when DNS fails. A routed domain is accepted from anyone
    on this server (it is ours to relay), so list only domains you serve."""
    route = run(config, lambda s: s.admin.add_route(cli_actor(), domain, target))
    where = f"held in the mailbox of {route.host}" if route.kind == "hold" else f"{route.host}:{route.port}"
    console.print(f"route {route.domain} → {where}")


@route_app.command("list")
def route_list(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """The routing table."""
    routes = run(config, lambda s: s.routes.list())
    if as_json:
        print_json([{"domain": r.domain, "kind": r.kind, "host": r.host, "port": r.port if r.kind == "smtp" else None}
                    for r in routes])
        return
    print_table(("domain", "kind", "next hop"), [
        (r.domain, "push (smtp)" if r.kind == "smtp" else "poll (hold)",
         f"{r.host}:{r.port}" if r.kind == "smtp" else r.host) for r in routes])


@route_app.command("remove")
def route_remove(domain: str, config: ConfigOpt = None) -> None:
    """Remove DOMAIN's route."""
    run(config, lambda s: s.admin.remove_route(cli_actor(), domain))
    console.print(f"route {domain} removed")


@relay_app.command("allow")
def relay_allow(network: Annotated[str, typer.Argument(help="an address or CIDR network, e.g. 10.1.0.0/16")],
                config: ConfigOpt = None) -> None:
    """Let clients in NETWORK send to any domain without logging in."""
    added = run(config, lambda s: s.admin.allow_relay(cli_actor(), network))
    console.print(f"relaying allowed for {added}")


@relay_app.command("list")
def relay_list(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Networks allowed to relay (from the config and from `relay allow`)."""
    configured, listed = run(config, lambda s: s.relay.listed())
    rows = [(n, "config") for n in configured] + [(n, "relay allow") for n in listed]
    if as_json:
        print_json([{"network": n, "source": source} for n, source in rows])
        return
    print_table(("network", "source"), [(n, "config smtp.trusted_networks" if source == "config" else source)
                                        for n, source in rows])


@relay_app.command("remove")
def relay_remove(network: str, config: ConfigOpt = None) -> None:
    """Stop NETWORK relaying (networks from the config file are changed there)."""
    run(config, lambda s: s.admin.remove_relay(cli_actor(), network))
    console.print(f"relaying no longer allowed for {network}")


@dkim_app.command("generate")
def dkim_generate(domain: str, bits: Annotated[int, typer.Option(help="RSA key size")] = 2048,
                  config: ConfigOpt = None) -> None:
    """Make a signing key for DOMAIN and print the DNS TXT record to publish. Mail submitted from DOMAIN
    is signed from now on."""
    key = run(config, lambda s: s.admin.generate_dkim(cli_actor(), domain, bits))
    console.print(f"Publish this TXT record, then mail from {key.domain} is signed:")
    print(f'{record_name(key)}. IN TXT "{txt_record(key)}"')


@dkim_app.command("show")
def dkim_show(domain: str, config: ConfigOpt = None) -> None:
    """Print the DNS TXT record of DOMAIN's key."""
    key = run(config, lambda s: s.dkim.key_for(f"x@{domain}"))
    if key is None:
        console.print(f"no DKIM key for {domain}")
        raise typer.Exit(1)
    print(f'{record_name(key)}. IN TXT "{txt_record(key)}"')


fetch_app = typer.Typer(help="Mailboxes fetched over POP3/IMAP: the gateway's holding box (poll mode) and users' "
                             "external accounts.", no_args_is_help=True)
app.add_typer(fetch_app, name="fetch")


@fetch_app.command("add")
def fetch_add(
    server: Annotated[str, typer.Argument(help="HOST:PORT of the POP3/IMAP server")],
    username: Annotated[str, typer.Argument(help="login name there")],
    password: Annotated[str, typer.Option("--password", prompt=True, hide_input=True, help="password there")],
    protocol: Annotated[str, typer.Option("--protocol", help="pop3 or imap")] = "pop3",
    security: Annotated[str, typer.Option("--security", help="tls (POP3S/IMAPS), starttls or none")] = "tls",
    to: Annotated[str | None, typer.Option("--to", help="deliver into this local user's INBOX (external "
                                                       "account); without it, route each message by the "
                                                       "envelope the gateway recorded (poll mode)")] = None,
    interval: Annotated[str, typer.Option("--interval", help="how often, e.g. 2m")] = "2m",
    keep: Annotated[bool, typer.Option("--keep", help="leave messages on the server")] = False,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="accept any TLS certificate (e.g. the "
                                                                "gateway's self-signed one)")] = False,
    config: ConfigOpt = None,
) -> None:
    """Fetch a remote mailbox on a timer (and when its user logs in)."""
    from dizimail.services.fetch import fetch_account
    from dizimail.util.units import parse_duration
    try:
        every = parse_duration(interval)
        acc = fetch_account(server, username, password, protocol=protocol, security=security, into=to,
                            interval=every, keep=keep, verify=not no_verify)
    except (ValueError, MailError) as exc:
        fail(f"{exc}", 2)
        return
    fetch_id = run(config, lambda s: s.admin.fetch_add(cli_actor(), acc))
    console.print(f"fetch {fetch_id} added: {protocol} {acc.host}:{acc.port} user {username} → "
                  f"{to or 'envelope recipients'} every {interval}")


@fetch_app.command("list")
def fetch_list(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Fetch accounts and how their last run went (never their passwords)."""
    accounts = run(config, lambda s: s.fetch.list())
    if as_json:
        print_json([{"id": a.id, "host": a.host, "port": a.port, "username": a.username, "protocol": a.protocol,
                     "security": a.security, "verify": a.verify, "mode": a.mode, "into": a.account,
                     "interval": a.interval, "keep": a.keep, "last_run": a.last_run or None,
                     "last_error": a.last_error} for a in accounts])
        return
    print_table(("id", "server", "user", "protocol", "into", "every", "keep", "last run", "last error"), [
        (str(a.id), f"{a.host}:{a.port}", a.username, f"{a.protocol}/{a.security}", a.account or "(envelope)",
         f"{int(a.interval)}s", "yes" if a.keep else "no",
         time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(a.last_run)) if a.last_run else "-", a.last_error)
        for a in accounts])


@fetch_app.command("remove")
def fetch_remove(fetch_id: int, config: ConfigOpt = None) -> None:
    """Stop fetching that mailbox."""
    run(config, lambda s: s.admin.fetch_remove(cli_actor(), fetch_id))
    console.print(f"fetch {fetch_id} removed")


@fetch_app.command("run")
def fetch_run(config: ConfigOpt = None) -> None:
    """Fetch every account now, once (the running server also does it on its timer)."""
    count = run(config, lambda s: s.fetch.run_all())
    console.print(f"{count} message(s) fetched")


secret_app = typer.Typer(help="Passwords this server keeps for logging in elsewhere, stored encrypted "
                              "(key: storage.master_key).", no_args_is_help=True)
app.add_typer(secret_app, name="secret")
SecretName = Annotated[str, typer.Argument(help="smarthost-password")]


@secret_app.command("set")
def secret_set(name: SecretName, stdin: Annotated[bool, typer.Option("--stdin", help="read the value from stdin")] = False,
               config: ConfigOpt = None) -> None:
    """Store a secret encrypted (e.g. the smarthost's AUTH password; it wins over delivery.smarthost_password).
    Running servers use it within a second."""
    if stdin:
        value = sys.stdin.readline().rstrip("\r\n")
    else:
        value = str(typer.prompt(name, hide_input=True, confirmation_prompt=True))
    if not value:
        fail("an empty value; use `secret remove` to clear it", 2)
    run(config, lambda s: s.admin.secret_set(cli_actor(), name, value))
    console.print(f"{name} stored (encrypted)")


@secret_app.command("remove")
def secret_remove(name: SecretName, config: ConfigOpt = None) -> None:
    """Forget a stored secret (the config's plaintext value, if any, applies again)."""
    run(config, lambda s: s.admin.secret_set(cli_actor(), name, ""))
    console.print(f"{name} removed")


@secret_app.command("list")
def secret_list(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Which secrets are stored (never their values)."""
    names = run(config, lambda s: s.secrets.list())
    if as_json:
        print_json([{"name": name, "set": stored} for name, stored in names])
        return
    print_table(("secret", "stored"), [(name, "yes" if stored else "no") for name, stored in names])
