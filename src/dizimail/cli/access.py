"""``dizimail block|allow``: the anti-spam block and allow lists (take effect on a running server
within two seconds, no restart)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from dizimail.cli.common import ConfigOpt, EncodingOpt, app, cli_actor, console, read_import, run
from dizimail.cli.output import JsonOpt, err_console, print_json, print_table
from dizimail.model.access import ListName
from dizimail.services.access import display_pattern

PATTERN_HELP = ("an address or CIDR network (192.0.2.7, 198.51.100.0/24, 2001:db8::/32), a sender "
                "(spam@usa.com), a domain's senders (@usa.com) or its subdomains' (*.usa.com)")
DomainOpt = Annotated[str | None, typer.Option("--domain", help=(
    "only for mail to this domain's recipients (default: the whole server)"))]


def _register(name: ListName, summary: str, effect: str) -> None:
    sub = typer.Typer(help=summary, no_args_is_help=True)
    app.add_typer(sub, name=str(name))

    @sub.command("add")
    def add(patterns: Annotated[list[str], typer.Argument(help=PATTERN_HELP)], domain: DomainOpt = None,
            note: Annotated[str, typer.Option("--note", help="why (shown by list)")] = "",
            config: ConfigOpt = None) -> None:
        added = run(config, lambda s: s.admin.list_add(cli_actor(), name, patterns, domain, note))
        where = f"mail to {domain}" if domain else "the whole server"
        console.print(f"{added} {'entry' if added == 1 else 'entries'} added to the {name} list for {where}"
                      f"{'' if added == len(patterns) else f' ({len(patterns) - added} already listed)'}")
    add.__doc__ = f"{effect} Several entries may be given at once."

    @sub.command("list")
    def list_(domain: DomainOpt = None, as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
        entries = run(config, lambda s: s.access.entries(name, domain))
        if as_json:
            print_json([{"list": str(e.list), "domain": e.scope or None, "pattern": e.pattern, "note": e.note,
                         "created": e.created} for e in entries])
            return
        print_table(("entry", "for", "note", "added"), [
            (display_pattern(e.pattern), display_pattern(e.scope) or "(global)", e.note,
             datetime.fromtimestamp(e.created, UTC).strftime("%Y-%m-%d %H:%M")) for e in entries])
    list_.__doc__ = f"The {name} list (global and per-domain entries; --domain for one domain's)."

    @sub.command("remove")
    def remove(pattern: Annotated[str, typer.Argument(help=PATTERN_HELP)], domain: DomainOpt = None,
               config: ConfigOpt = None) -> None:
        removed = run(config, lambda s: s.admin.list_remove(cli_actor(), name, pattern, domain))
        console.print(f"{removed} removed from the {name} list")
    remove.__doc__ = f"Remove one entry from the {name} list (with the --domain it was added with)."

    @sub.command("import")
    def import_(file: Annotated[Path, typer.Argument(help="one entry per line, optionally followed by a note; "
                                                         "# comments")],
                domain: DomainOpt = None, encoding: EncodingOpt = "utf-8", config: ConfigOpt = None) -> None:
        lines = read_import(file, encoding).splitlines()
        result = run(config, lambda s: s.admin.list_import(cli_actor(), name, lines, domain))
        for lineno, _line, why in result.errors:
            err_console.print(f"line {lineno}: {why}")
        console.print(f"{result.added} added, {result.listed} already listed, {len(result.errors)} lines rejected")
        if result.errors:
            raise typer.Exit(1)
    import_.__doc__ = f"Add every entry of FILE to the {name} list; bad lines are reported with their number."


_register(ListName.BLOCK, "Block lists: refuse mail from addresses, networks, senders or domains.",
          "Refuse mail from these clients or senders (554/550 5.7.1; an allow entry overrides).")
_register(ListName.ALLOW, "Allow lists: let clients or senders past the block lists, DNSBLs and rate "
                          "(never past the relay rules or the virus scan).",
          "Let these clients or senders past the anti-spam checks.")
