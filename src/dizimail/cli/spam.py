"""``dizimail spam train|score``: the content filter from the command line (anti-spam layer 4)."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from dizimail.app.build import Services
from dizimail.cli.common import ConfigOpt, app, cli_actor, console, fail, run
from dizimail.cli.output import JsonOpt, err_console, print_json, print_table
from dizimail.services.content.settings import scope_of
from dizimail.services.content.tokens import tokenize

spam_app = typer.Typer(help="The content filter: train it from folders, score messages.", no_args_is_help=True)
app.add_typer(spam_app, name="spam")
UserOpt = Annotated[str | None, typer.Option("--user", help="a user's personal model instead of the global one")]
MAX_FILE = 32 * 1024 * 1024  # larger files are skipped (no mail that size is worth learning from)
BATCH = 500  # messages counted in memory before they go to the database


def message_files(paths: list[Path]) -> Iterator[Path]:
    """Files given, and every file under folders given (Maildir cur/new, MH, one message per file),
    in name order; hidden files skipped."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            yield path
        else:
            err_console.print(f"{path}: no such file or folder")


def _read(path: Path) -> bytes | None:
    try:
        if path.stat().st_size > MAX_FILE:
            return None
        return path.read_bytes()
    except OSError as exc:
        err_console.print(f"{path}: {exc}")
        return None


@spam_app.command("train")
def train(ham: Annotated[list[Path] | None, typer.Option("--ham", help="a folder (or file) of wanted mail")] = None,
          spam: Annotated[list[Path] | None, typer.Option("--spam", help="a folder (or file) of spam")] = None,
          user: UserOpt = None, config: ConfigOpt = None) -> None:
    """Teach the global model (--user: that user's personal model): every message under --ham as ham,
    under --spam as spam."""
    jobs = [(p, False) for p in message_files(ham or [])] + [(p, True) for p in message_files(spam or [])]
    if not jobs:
        fail("nothing to learn: give --ham and/or --spam folders", 2)

    async def go(s: Services) -> tuple[int, int, int, int]:
        name = scope_of(user=user) if user is not None else ""
        learnt = {True: 0, False: 0}
        with Progress(console=err_console, transient=False) as progress:
            task = progress.add_task("learning", total=len(jobs))
            for start in range(0, len(jobs), BATCH):
                counts = {True: Counter[str](), False: Counter[str]()}
                messages = {True: 0, False: 0}
                for path, is_spam in jobs[start:start + BATCH]:
                    data = _read(path)
                    if data is not None:
                        counts[is_spam].update(await asyncio.to_thread(tokenize, data))
                        messages[is_spam] += 1
                    progress.advance(task)
                for is_spam in (True, False):
                    if messages[is_spam]:
                        await s.content.apply(name, is_spam, messages[is_spam], dict(counts[is_spam]))
                        learnt[is_spam] += messages[is_spam]
        nspam, nham = await s.content.trained(name)
        return learnt[False], learnt[True], nham, nspam

    ham_n, spam_n, total_ham, total_spam = run(config, go)
    console.print(f"learnt {ham_n} ham and {spam_n} spam; the model now holds {total_ham} ham and {total_spam} spam")


@spam_app.command("score")
def score(paths: Annotated[list[Path], typer.Argument(help="message files or folders")],
          user: UserOpt = None, config: ConfigOpt = None) -> None:
    """Print ``<path> <score>`` per message: the content score 0-10 that delivery would use (no network;
    --user: with that user's personal model once it has learnt enough, else the global one)."""
    async def go(s: Services) -> None:
        model = await s.content.model(await _scoring_model(s, user))
        out = sys.stdout
        for path in message_files(paths):
            data = _read(path)
            if data is None:
                continue
            value, _clues = model.score(tokenize(data))
            name = str(path).replace("\n", "?").replace("\r", "?")  # one line per message, whatever the name
            out.write(f"{name} {value:.2f}\n")
        out.flush()
    run(config, go)


async def _scoring_model(s: Services, user: str | None) -> str:
    """The model delivery would score with (services/policy/content.py): a user's own once it has learnt
    enough, else the global one; said on stderr when delivery would not score at all yet."""
    least = s.config.antispam.content_min_trained
    if user is not None:
        name = scope_of(user=user)
        nspam, nham = await s.content.trained(name)
        if nspam >= least and nham >= least:
            return name
        err_console.print(f"{user}'s own model has learnt from {nspam} spam and {nham} ham, fewer than "
                          f"antispam.content_min_trained = {least} each: scores are the global model's, "
                          "as delivery would use")
    nspam, nham = await s.content.trained("")
    if nspam < least or nham < least:
        err_console.print(f"the global model has learnt from {nspam} spam and {nham} ham, fewer than "
                          f"antispam.content_min_trained = {least} each: delivery does not score content "
                          "yet, and these scores mean nothing (train it first: dizimail spam train)")
    return ""


settings_app = typer.Typer(help="Spam thresholds and personal models per domain and per user.", no_args_is_help=True)
spam_app.add_typer(settings_app, name="settings")
DomainOpt = Annotated[str | None, typer.Option("--domain", help="the domain's setting (its users inherit it)")]
UserScopeOpt = Annotated[str | None, typer.Option("--user", help="one user's setting (overrides the domain's)")]
Threshold = Annotated[float | None, typer.Option(min=0, max=10.5, help="a spam score 0-10 (10.5: never)")]


def _show(value: float | bool | None) -> str:
    return "-" if value is None else ("yes" if value is True else "no" if value is False else f"{value:g}")


@settings_app.command("set")
def settings_set(domain: DomainOpt = None, user: UserScopeOpt = None,
                 tag_at: Annotated[float | None, typer.Option("--tag-at", help="tag the subject from this score")] = None,
                 junk_at: Annotated[float | None, typer.Option("--junk-at", help="deliver to Junk from this score")] = None,
                 reject_at: Annotated[float | None, typer.Option("--reject-at", help="refuse from this score")] = None,
                 personal: Annotated[bool | None, typer.Option(
                     "--personal/--no-personal", help="the Junk folder also trains a model of the user's own")] = None,
                 config: ConfigOpt = None) -> None:
    """Set a domain's or a user's thresholds (those not given stay as they were; unset ones are inherited)."""
    if tag_at is None and junk_at is None and reject_at is None and personal is None:
        fail("nothing to set: give --tag-at, --junk-at, --reject-at or --personal/--no-personal", 2)
    new = run(config, lambda s: s.admin.set_spam(cli_actor(), scope_of(domain=domain, user=user), tag_at=tag_at,
                                                 junk_at=junk_at, reject_at=reject_at, personal=personal))
    console.print(f"{new.scope}: tag at {_show(new.tag_at)}, Junk at {_show(new.junk_at)}, refuse at "
                  f"{_show(new.reject_at)}, personal model {_show(new.personal)} (-: inherited)")


@settings_app.command("list")
def settings_list(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Every domain's and user's settings (unset values are inherited: the user's domain's, then [antispam])."""
    entries = run(config, lambda s: s.spam_settings.entries())
    if as_json:
        print_json([{"scope": e.scope, "tag_at": e.tag_at, "junk_at": e.junk_at, "reject_at": e.reject_at,
                     "personal": e.personal, "updated": e.updated} for e in entries])
        return
    print_table(("domain or user", "tag at", "junk at", "refuse at", "personal model"),
                [(e.scope, _show(e.tag_at), _show(e.junk_at), _show(e.reject_at), _show(e.personal))
                 for e in entries])


@settings_app.command("remove")
def settings_remove(domain: DomainOpt = None, user: UserScopeOpt = None, config: ConfigOpt = None) -> None:
    """Forget a domain's or a user's settings (they inherit again)."""
    scope = run(config, lambda s: _remove(s, scope_of(domain=domain, user=user)))
    console.print(f"{scope}: settings removed")


async def _remove(s: Services, scope: str) -> str:
    await s.admin.remove_spam(cli_actor(), scope)
    return scope
