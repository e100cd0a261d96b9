"""``dizimail sieve``: a user's Sieve scripts (issue #12) from the command line: the same operations as
ManageSieve (RFC 5804), on the same service; changes go to the audit log."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from dizimail.app.build import Services
from dizimail.cli.common import ConfigOpt, app, cli_actor, console, fail, run
from dizimail.cli.output import JsonOpt, print_json, print_table
from dizimail.model.types import Account
from dizimail.services.sieve.rules import MailRules, checked, generate

sieve_app = typer.Typer(help="Users' Sieve scripts (mail rules).", no_args_is_help=True)
app.add_typer(sieve_app, name="sieve")
UserArg = Annotated[str, typer.Argument(help="the user's address")]
NameArg = Annotated[str, typer.Argument(help="the script's name")]


def _read(file: Path) -> str:
    try:
        data = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {file}: {exc}", 2)
        raise AssertionError("unreachable") from exc


@sieve_app.command("list")
def list_scripts(user: UserArg, as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """The user's scripts; the active one runs on their mail."""
    async def job(s: Services) -> Any:
        account = await s.accounts.get_user(user)
        return await s.sieve.list(account.id)
    scripts = run(config, job)
    if as_json:
        print_json([{"name": i.name, "active": i.active, "size": i.size, "updated": i.updated} for i in scripts])
        return
    print_table(("name", "active", "size", "updated"),
                [(i.name, "yes" if i.active else "", str(i.size),
                  datetime.fromtimestamp(i.updated, UTC).strftime("%Y-%m-%d %H:%M")) for i in scripts])


@sieve_app.command("get")
def get(user: UserArg, name: NameArg, config: ConfigOpt = None) -> None:
    """Print a script."""
    async def job(s: Services) -> Any:
        account = await s.accounts.get_user(user)
        return await s.sieve.get(account.id, name)
    sys.stdout.write(run(config, job))


@sieve_app.command("check")
def check(user: UserArg, file: Annotated[Path, typer.Argument(help="the script (UTF-8); - for stdin")],
          config: ConfigOpt = None) -> None:
    """Check a script without storing it: errors come with line and column."""
    text = _read(file)

    async def job(s: Services) -> None:
        await s.accounts.get_user(user)
        await s.sieve.verify(text)
    run(config, job)
    console.print("the script is valid")


@sieve_app.command("put")
def put(user: UserArg, name: NameArg, file: Annotated[Path, typer.Argument(help="the script (UTF-8); - for stdin")],
        activate: Annotated[bool, typer.Option("--activate", help="make it the active script")] = False,
        config: ConfigOpt = None) -> None:
    """Store a script (replacing one of the same name); it is checked first."""
    text = _read(file)

    async def job(s: Services) -> None:
        async def change(account: Account) -> None:
            await s.sieve.put(account.id, name, text, activate=activate)
        await s.admin.change_sieve(cli_actor(), "sieve.put", user, name, change)
    run(config, job)
    console.print(f"stored {name}" + (" (active)" if activate else ""))


@sieve_app.command("activate")
def activate(user: UserArg, name: Annotated[str, typer.Argument(help="the script; leave out to turn rules off")] = "",
             config: ConfigOpt = None) -> None:
    """Make a script the one that runs (or none)."""
    async def job(s: Services) -> Any:
        async def change(account: Account) -> None:
            await s.sieve.activate(account.id, name or None)
        await s.admin.change_sieve(cli_actor(), "sieve.activate", user, name, change)
    run(config, job)
    console.print(f"{name} is active" if name else "no script is active")


@sieve_app.command("delete")
def delete(user: UserArg, name: NameArg, config: ConfigOpt = None) -> None:
    """Delete a script (not the active one)."""
    async def job(s: Services) -> Any:
        async def change(account: Account) -> None:
            await s.sieve.delete(account.id, name)
        await s.admin.change_sieve(cli_actor(), "sieve.delete", user, name, change)
    run(config, job)
    console.print(f"deleted {name}")


@sieve_app.command("rename")
def rename(user: UserArg, old: NameArg, new: Annotated[str, typer.Argument(help="the new name")],
           config: ConfigOpt = None) -> None:
    """Rename a script."""
    async def job(s: Services) -> Any:
        async def change(account: Account) -> None:
            await s.sieve.rename(account.id, old, new)
        await s.admin.change_sieve(cli_actor(), "sieve.rename", user, f"{old} -> {new}", change)
    run(config, job)
    console.print(f"renamed {old} to {new}")


# --- what users set without writing Sieve (services.sieve.rules) ---------------------------------------------
@sieve_app.command("rules")
def rules(user: UserArg,
          set_file: Annotated[Path | None, typer.Option("--set", help="replace them with this JSON file ({} clears)")] = None,
          script: Annotated[bool, typer.Option("--script", help="print the Sieve they generate")] = False,
          config: ConfigOpt = None) -> None:
    """The user's vacation, forwarding and filters (JSON: docs/sieve.md), or the script they make."""
    data = None
    if set_file is not None:
        try:
            data = json.loads(_read(set_file))
        except ValueError as exc:
            fail(f"{set_file}: not JSON: {exc}", 2)

    async def job(s: Services) -> MailRules:
        account = await s.accounts.get_user(user)
        if data is not None:
            chosen = checked(data)

            async def change(account: Account) -> None:
                await s.sieve.set_rules(account.id, chosen)
            await s.admin.change_sieve(cli_actor(), "sieve.rules", user, "rules", change)
        return await s.sieve.rules(account.id)
    current = run(config, job)
    sys.stdout.write(generate(current, True) if script else current.to_json() + "\n")


@sieve_app.command("vacation")
def vacation(user: UserArg,
             text: Annotated[str, typer.Option("--text", help="the reply's text")] = "",
             subject: Annotated[str, typer.Option("--subject", help="the reply's subject")] = "",
             start: Annotated[str, typer.Option("--from", help="first day, YYYY-MM-DD")] = "",
             end: Annotated[str, typer.Option("--until", help="last day, YYYY-MM-DD")] = "",
             days: Annotated[int, typer.Option("--days", help="one reply per sender per this many days")] = 1,
             addresses: Annotated[list[str] | None, typer.Option("--address", help="another address of the user")] = None,
             off: Annotated[bool, typer.Option("--off", help="turn the vacation reply off")] = False,
             config: ConfigOpt = None) -> None:
    """Set (or turn off) the user's vacation reply; it never answers lists, bulk or automatic mail."""
    if not off and not text:
        fail("give the reply with --text, or --off", 2)
    setting = None if off else {"text": text, "subject": subject, "start": start, "end": end, "days": days,
                                "addresses": addresses or []}
    _change_rules(user, "vacation", setting, config)
    console.print("vacation reply off" if off else "vacation reply set")


@sieve_app.command("forward")
def forward(user: UserArg,
            targets: Annotated[list[str] | None, typer.Argument(help="where to send the user's mail on")] = None,
            no_keep: Annotated[bool, typer.Option("--no-keep", help="keep no copy here")] = False,
            off: Annotated[bool, typer.Option("--off", help="stop forwarding")] = False,
            config: ConfigOpt = None) -> None:
    """Forward the user's mail (with SRS for other domains' senders), keeping a copy or not."""
    if not off and not targets:
        fail("give the addresses to forward to, or --off", 2)
    _change_rules(user, "forwarding", None if off else {"targets": targets, "keep": not no_keep}, config)
    console.print("forwarding off" if off else f"forwarding to {', '.join(targets or [])}")


def _change_rules(user: str, part: str, value: Any, config: Path | None) -> None:
    async def job(s: Services) -> None:
        async def change(account: Account) -> None:
            current = json.loads((await s.sieve.rules(account.id)).to_json())
            current[part] = value
            await s.sieve.set_rules(account.id, checked(current))
        await s.admin.change_sieve(cli_actor(), f"sieve.{part}", user, part, change)
    run(config, job)
