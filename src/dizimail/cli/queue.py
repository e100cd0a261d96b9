"""``dizimail queue``: see and act on the outbound queue (the running server notices within a second)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated

import typer

from dizimail.app.build import Services
from dizimail.cli.common import ConfigOpt, app, as_service_user, cli_actor, console, fail, load_or_fail, run
from dizimail.cli.output import JsonOpt, print_json, print_table
from dizimail.model.types import PENDING

queue_app = typer.Typer(help="See and act on the outbound mail queue.", no_args_is_help=True)
app.add_typer(queue_app, name="queue")
QueueId = Annotated[str, typer.Argument(help="queue id, as `queue list` shows it")]
AllOpt = Annotated[bool, typer.Option("--all", help="every message in the queue")]


def _age(seconds: float) -> str:
    whole = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


@queue_app.command("list")
def queue_list(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Messages with recipients still pending, oldest first."""
    entries = run(config, lambda s: s.queue.list())
    if as_json:  # like `postqueue -j`; times are Unix seconds
        print_json([{"queue_id": e.queue_id, "created": e.created, "size": e.size, "sender": e.sender, "held": e.held,
                     "recipients": [{"address": r.address, "status": r.status, "attempts": r.attempts,
                                     "next_attempt": r.next_attempt, "last_error": r.last_error}
                                    for r in e.recipients]} for e in entries])
        return
    now = time.time()
    rows = []
    for e in entries:
        for i, r in enumerate(e.recipients):
            first = i == 0
            status = ("held, " if e.held else "") + r.status + (f" ({r.attempts}): {r.last_error}"
                                                                if r.last_error else "")
            rows.append((e.queue_id if first else "", _age(now - e.created) if first else "",
                         str(e.size) if first else "", f"<{e.sender}>" if first else "", r.address, status,
                         "now" if r.next_attempt <= now else _when(r.next_attempt)))
    print_table(("queue id", "age", "size", "from", "to", "status", "next attempt"), rows)
    console.print(f"{len(entries)} messages in queue")


@queue_app.command("show")
def queue_show(queue_id: QueueId, config: ConfigOpt = None) -> None:
    """One message: envelope, state of every recipient, and its headers."""
    async def go(s: Services) -> None:
        item = await s.queue.show(queue_id)
        console.print(f"queue id:  {item.queue_id}\nfrom:      <{item.sender}>\nsize:      {item.size}\n"
                      f"arrived:   {_when(item.created)}\nheld:      {'yes' if item.held else 'no'}\n"
                      f"warned:    {'yes' if item.warned else 'no'}\n"
                      f"lease:     {item.lease_owner + ' until ' + _when(item.lease_expiry) if item.lease_owner else '-'}"
                      f"\nparams:    {' '.join(f'{k}={v}' for k, v in item.params.items()) or '-'}")
        print_table(("recipient", "status", "attempts", "next attempt", "last result"), [
            (r.address, r.status, str(r.attempts), _when(r.next_attempt) if r.status in PENDING else "-",
             r.last_error) for r in item.recipients])
        console.print((await s.queue.headers(item)).decode("utf-8", "replace").rstrip("\r\n"))
    run(config, go)


def _one_or_all(queue_id: str | None, every: bool) -> str | None:
    if (queue_id is not None) != every:  # exactly one of them
        return queue_id
    fail("give a queue id or --all", 2)
    return None


@queue_app.command("retry")
def queue_retry(queue_id: Annotated[str | None, typer.Argument()] = None, every: AllOpt = False,
                config: ConfigOpt = None) -> None:
    """Attempt delivery of a message (or --all) now, whatever its schedule says."""
    qid = _one_or_all(queue_id, every)
    count = run(config, lambda s: s.admin.queue_act(cli_actor(), "retry", qid))
    console.print(f"{count} message(s) scheduled for delivery now")


@queue_app.command("flush")
def queue_flush(config: ConfigOpt = None) -> None:
    """Attempt delivery of every queued message now."""
    count = run(config, lambda s: s.admin.queue_act(cli_actor(), "retry", None))
    console.print(f"{count} message(s) scheduled for delivery now")


@queue_app.command("hold")
def queue_hold(queue_id: Annotated[str | None, typer.Argument()] = None, every: AllOpt = False,
               config: ConfigOpt = None) -> None:
    """Keep a message (or --all) in the queue without delivering it until `release`."""
    qid = _one_or_all(queue_id, every)
    count = run(config, lambda s: s.admin.queue_act(cli_actor(), "hold", qid))
    console.print(f"{count} message(s) held")


@queue_app.command("release")
def queue_release(queue_id: Annotated[str | None, typer.Argument()] = None, every: AllOpt = False,
                  config: ConfigOpt = None) -> None:
    """Let a held message (or --all) be delivered again."""
    qid = _one_or_all(queue_id, every)
    count = run(config, lambda s: s.admin.queue_act(cli_actor(), "release", qid))
    console.print(f"{count} message(s) released")


@queue_app.command("delete")
def queue_delete(queue_id: QueueId, config: ConfigOpt = None) -> None:
    """Remove a message from the queue without delivering it (no bounce is sent)."""
    run(config, lambda s: s.admin.queue_delete(cli_actor(), queue_id))
    console.print(f"{queue_id} deleted")


@queue_app.command("concurrency")
def queue_concurrency(total: Annotated[int | None, typer.Option("--total", help="parallel deliveries in all")] = None,
                      per_destination: Annotated[int | None, typer.Option(
                          "--per-destination", help="parallel deliveries to one destination")] = None,
                      config: ConfigOpt = None) -> None:
    """Show or change delivery concurrency; running servers apply a change within a second."""
    async def go(s: Services) -> tuple[int, int]:
        defaults = s.config.delivery.concurrency, s.config.delivery.destination_concurrency
        return await s.admin.set_concurrency(cli_actor(), total, per_destination, defaults)
    now_total, now_per = run(config, go)
    console.print(f"concurrency: {now_total} in all, {now_per} per destination")


@queue_app.command("run")
def queue_run(wake_stdin: Annotated[bool, typer.Option("--wake-stdin", hidden=True)] = False,
              config: ConfigOpt = None) -> None:
    """Run only this node's queue runner in the foreground (`serve` starts one itself)."""
    import uvloop

    from dizimail.app.node import setup_logging
    from dizimail.app.runner import run_queue
    cfg = load_or_fail(config)
    as_service_user(cfg, config)
    setup_logging(cfg.server.log_level)
    uvloop.run(run_queue(cfg, wake_stdin))
