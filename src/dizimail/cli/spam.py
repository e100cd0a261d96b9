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
from dizimail.cli.common import ConfigOpt, app, console, fail, run
from dizimail.cli.output import err_console
from dizimail.services.content.tokens import tokenize

spam_app = typer.Typer(help="The content filter: train it from folders, score messages.", no_args_is_help=True)
app.add_typer(spam_app, name="spam")
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
          config: ConfigOpt = None) -> None:
    """Teach the global model: every message under --ham as ham, under --spam as spam."""
    jobs = [(p, False) for p in message_files(ham or [])] + [(p, True) for p in message_files(spam or [])]
    if not jobs:
        fail("nothing to learn: give --ham and/or --spam folders", 2)

    async def go(s: Services) -> tuple[int, int, int, int]:
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
                        await s.content.apply("", is_spam, messages[is_spam], dict(counts[is_spam]))
                        learnt[is_spam] += messages[is_spam]
        nspam, nham = await s.content.trained()
        return learnt[False], learnt[True], nham, nspam

    ham_n, spam_n, total_ham, total_spam = run(config, go)
    console.print(f"learnt {ham_n} ham and {spam_n} spam; the model now holds {total_ham} ham and {total_spam} spam")


@spam_app.command("score")
def score(paths: Annotated[list[Path], typer.Argument(help="message files or folders")],
          config: ConfigOpt = None) -> None:
    """Print ``<path> <score>`` per message: the content score 0-10 that delivery would use (no network)."""
    async def go(s: Services) -> None:
        model = await s.content.model()
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
