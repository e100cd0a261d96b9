"""``dizimail quarantine``: mail held for a human (viruses with ``antivirus.action = quarantine``, spam past
``antispam.reject_at`` with ``reject_action = quarantine``): list, show, release, delete."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from dizimail.app.build import Services
from dizimail.cli.common import ConfigOpt, app, cli_actor, console, run
from dizimail.cli.output import JsonOpt, print_json, print_table
from dizimail.codec.mime.headers import split_header
from dizimail.model.types import Quarantined

quarantine_app = typer.Typer(help="Mail held in the quarantine instead of delivered.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")
EntryId = Annotated[int, typer.Argument(help="entry number, as `quarantine list` shows it")]


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _json(e: Quarantined) -> dict[str, object]:
    return {"id": e.id, "queue_id": e.queue_id, "kind": e.kind, "reason": e.reason, "score": e.score,
            "sender": e.sender, "recipients": list(e.recipients), "from": e.from_, "subject": e.subject,
            "size": e.size, "created": e.created, "expires": e.expires,
            "findings": [{"check": c, "result": r, "points": p, "reason": why} for c, r, p, why in e.findings]}


@quarantine_app.command("list")
def quarantine_list(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Held messages, newest first."""
    entries = run(config, lambda s: s.quarantine.entries())
    if as_json:
        print_json([_json(e) for e in entries])
        return
    print_table(("id", "held", "kind", "reason", "from", "to", "subject"), [
        (str(e.id), _when(e.created), e.kind, e.reason, f"<{e.sender}>", ", ".join(e.recipients), e.subject)
        for e in entries])
    console.print(f"{len(entries)} messages in quarantine")


@quarantine_app.command("show")
def quarantine_show(entry_id: EntryId, config: ConfigOpt = None) -> None:
    """One held message: its envelope, what every check found and why, and its header."""
    async def go(s: Services) -> None:
        e = await s.quarantine.get(entry_id)
        data = await s.quarantine.message(e)
        console.print(f"entry:     {e.id} (queue id {e.queue_id})\nkind:      {e.kind}\nreason:    {e.reason}\n"
                      f"score:     {e.score:.1f}\nsender:    <{e.sender}>\nrecipients: {', '.join(e.recipients)}\n"
                      f"size:      {e.size}\nheld:      {_when(e.created)}\nexpires:   {_when(e.expires)}")
        print_table(("check", "result", "points", "why"), [
            (check, result or "-", f"{points:+g}", why) for check, result, points, why in e.findings])
        console.print(data[:split_header(data).end].decode("utf-8", "replace").rstrip("\r\n"))
    run(config, go)


@quarantine_app.command("release")
def quarantine_release(entry_id: EntryId, no_learn: Annotated[bool, typer.Option(
        "--no-learn", help="do not teach the content filter that the message was ham")] = False,
        config: ConfigOpt = None) -> None:
    """Deliver a held message to its recipients (a spam one is learnt as ham) and take it out."""
    result = run(config, lambda s: s.admin.quarantine_release(cli_actor(), entry_id, learn=not no_learn))
    console.print(f"entry {entry_id} released: {len(result.delivered)} local "
                  f"{'delivery' if len(result.delivered) == 1 else 'deliveries'}"
                  + (f", over quota (queued): {', '.join(result.refused)}" if result.refused else ""))


@quarantine_app.command("delete")
def quarantine_delete(entry_ids: Annotated[list[int], typer.Argument(help="entry numbers")],
                      config: ConfigOpt = None) -> None:
    """Delete held messages for good."""
    async def go(s: Services) -> None:
        for entry_id in entry_ids:
            await s.admin.quarantine_delete(cli_actor(), entry_id)
    run(config, go)
    console.print(f"{len(entry_ids)} deleted")
