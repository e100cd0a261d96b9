"""``dizimail audit list|export``: the audit log of administrative actions (issue #11), from the command
line, the REST API and (later) the admin pages alike."""

from __future__ import annotations

import csv
import io
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from dizimail.app.build import Services
from dizimail.cli.common import ConfigOpt, app, fail, run
from dizimail.cli.output import JsonOpt, print_json, print_table
from dizimail.model.audit import AuditEntry
from dizimail.services.accounts import normalize_domain
from dizimail.services.admin import AuditQuery, entry_dict

audit_app = typer.Typer(help="The audit log: who changed what, when and from where.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
DomainOpt = Annotated[str | None, typer.Option("--domain", help="one domain's entries")]
ActorOpt = Annotated[str, typer.Option("--actor", help="cli:USER or token:ID")]
ActionOpt = Annotated[str, typer.Option("--action", help="an action or its start: user.quota, user., token.")]
SinceOpt = Annotated[str, typer.Option("--since", help="from this UTC date or time (2026-12-01, 2026-12-01T08:00)")]
UntilOpt = Annotated[str, typer.Option("--until", help="before this UTC date or time")]
LimitOpt = Annotated[int, typer.Option("--limit", min=1, max=1000, help="newest entries shown")]
COLUMNS = ("id", "at", "actor", "role", "ip", "action", "target", "domain", "before", "after")


def _time(text: str) -> float:
    if not text:
        return 0.0
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
    except ValueError:
        fail(f"not a date: {text!r} (use e.g. 2026-12-01 or 2026-12-01T08:00)", 2)


def _query(domain: str | None, actor: str, action: str, since: str, until: str, limit: int) -> AuditQuery:
    return AuditQuery(domains=(normalize_domain(domain),) if domain else None, actor=actor, action=action,
                      since=_time(since), until=_time(until), limit=limit)


def _when(entry: AuditEntry) -> str:
    return datetime.fromtimestamp(entry.at, UTC).strftime("%Y-%m-%d %H:%M:%S")


@audit_app.command("list")
def list_(domain: DomainOpt = None, actor: ActorOpt = "", action: ActionOpt = "", since: SinceOpt = "",
          until: UntilOpt = "", limit: LimitOpt = 50, as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """The newest entries first."""
    query = _query(domain, actor, action, since, until, limit)
    entries = run(config, lambda s: s.admin.entries(query))
    if as_json:
        print_json([entry_dict(e) for e in entries])
        return
    print_table(("id", "at (UTC)", "actor", "from", "action", "target", "before", "after"),
                [(str(e.id), _when(e), e.actor, e.ip or "-", e.action, e.target, e.before, e.after) for e in entries])


@audit_app.command("export")
def export(file: Annotated[Path | None, typer.Argument(help="CSV file (default: stdout)")] = None,
           domain: DomainOpt = None, actor: ActorOpt = "", action: ActionOpt = "", since: SinceOpt = "",
           until: UntilOpt = "", config: ConfigOpt = None) -> None:
    """Every matching entry as CSV (UTF-8 with a byte-order mark, which Excel needs to read Chinese)."""
    query = _query(domain, actor, action, since, until, 1000)

    async def everything(s: Services) -> list[AuditEntry]:
        out: list[AuditEntry] = []
        page = query
        while batch := await s.admin.entries(page):
            out += batch
            page = AuditQuery(page.domains, page.actor, page.action, page.since, page.until, batch[-1].id, page.limit)
        return out
    entries = run(config, everything)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for e in reversed(entries):  # oldest first, as a ledger reads
        writer.writerow((e.id, _when(e), e.actor, e.role, e.ip, e.action, e.target, e.domain, e.before, e.after))
    data = "\ufeff" + buffer.getvalue()
    if file is None:
        sys.stdout.write(data)
    else:
        file.write_text(data, encoding="utf-8")
