"""``dizimail report usage``: the monthly usage report per domain (issue #11, the seed's billing), and
``dizimail notice send``: a broadcast notice mailed to every user of the system or of one domain."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from dizimail.cli.common import ConfigOpt, app, cli_actor, console, fail, run
from dizimail.cli.output import JsonOpt, print_json, print_table
from dizimail.services.traffic import this_month, usage_csv, usage_report
from dizimail.util.units import format_size

report_app = typer.Typer(help="Reports.", no_args_is_help=True)
notice_app = typer.Typer(help="Broadcast notices to users.", no_args_is_help=True)
app.add_typer(report_app, name="report")
app.add_typer(notice_app, name="notice")


@report_app.command("usage")
def usage(month: Annotated[str, typer.Option("--month", help="YYYY-MM (default: this month)")] = "",
          as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout (UTF-8 with a BOM)")] = False,
          as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Per domain: mailboxes and storage now, messages and bytes in and out during the month."""
    rows = run(config, lambda s: usage_report(s.accounts, s.traffic, month or this_month()))
    if as_csv:
        sys.stdout.write(usage_csv(rows))
        return
    if as_json:
        print_json([vars(r) for r in rows])
        return
    print_table(("domain", "mailboxes", "used", "messages in", "bytes in", "messages out", "bytes out"),
                [(r.domain, str(r.mailboxes), format_size(r.used_bytes), str(r.messages_in), format_size(r.bytes_in),
                  str(r.messages_out), format_size(r.bytes_out)) for r in rows])


@notice_app.command("send")
def send(subject: Annotated[str, typer.Option("--subject", help="one line")],
         body_file: Annotated[Path | None, typer.Option("--body-file", help="the text (UTF-8); - for stdin")] = None,
         body: Annotated[str, typer.Option("--body", help="the text, when short")] = "",
         domain: Annotated[str | None, typer.Option("--domain", help="only this domain's users")] = None,
         at: Annotated[str, typer.Option("--at", help=(
             "send it then (定时群发): YYYY-MM-DDTHH:MM[:SS][+zone] (local time without a zone) or +30m, +2h, "
             "+1d; until then it waits in the queue (`queue list`, `queue delete` cancels)"))] = "",
         config: ConfigOpt = None) -> None:
    """Mail a notice from the postmaster to every active user (of one domain), now or at a time."""
    if body_file is not None:
        text = sys.stdin.read() if str(body_file) == "-" else body_file.read_text(encoding="utf-8")
    elif body:
        text = body
    else:
        fail("give the text with --body or --body-file", 2)
    release = when(at) if at else None
    delivered = run(config, lambda s: s.admin.send_notice(cli_actor(), subject, text, domain, release))
    if release is None:
        console.print(f"notice delivered to {delivered} mailboxes")
    else:
        stamp = datetime.fromtimestamp(release).astimezone().isoformat(timespec="seconds")
        console.print(f"notice for {delivered} mailboxes waits in the queue until {stamp}")


def when(text: str) -> float:
    """``--at``: an ISO date-time (local time without a zone) or +N[smhd] from now."""
    if text.startswith("+"):
        scale = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(text[-1:], 0)
        if scale and text[1:-1].isdigit():
            return time.time() + int(text[1:-1]) * scale
        fail(f"--at {text!r}: +N followed by s, m, h or d", 2)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--at {text!r}: a date-time such as 2026-12-24T09:00 or +30m", 2)
    return (moment if moment.tzinfo else moment.astimezone()).timestamp()
