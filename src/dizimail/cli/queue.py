"""``dizimail queue``: what waits in the outbound queue."""

from __future__ import annotations

import time

import typer
from rich.table import Table

from dizimail.app.build import Services
from dizimail.cli.main import ConfigOpt, app, console, run

queue_app = typer.Typer(help="Inspect the mail queue.", no_args_is_help=True)
app.add_typer(queue_app, name="queue")


@queue_app.command("list")
def queue_list(config: ConfigOpt = None) -> None:
    """Messages with recipients still pending, oldest first."""
    async def go(s: Services) -> None:
        entries = await s.queue.list()
        table = Table("queue id", "age", "size", "from", "to", "status")
        for e in entries:
            for i, r in enumerate(e.recipients):
                first = i == 0
                table.add_row(e.queue_id if first else "", f"{int(time.time() - e.created)}s" if first else "",
                              str(e.size) if first else "", f"<{e.sender}>" if first else "", r.address,
                              r.status + (f": {r.last_error}" if r.last_error else ""))
        console.print(table)
        console.print(f"{len(entries)} messages in queue")
    run(config, go)
