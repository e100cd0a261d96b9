"""``dizimail sieve``: a user's Sieve scripts (issue #12) from the command line: the same operations as
ManageSieve (RFC 5804), on the same service; changes go to the audit log."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from dizimail.app.build import Services
from dizimail.cli.common import ConfigOpt, app, cli_actor, console, fail, run
from dizimail.cli.output import JsonOpt, print_json, print_table
from dizimail.model.types import Account

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
