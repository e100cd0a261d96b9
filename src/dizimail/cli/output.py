"""What the command line prints: tables for people, one JSON document for programs (``--json``).

Mail data (addresses, reply texts, names) is hostile text: rich never reads markup or emoji codes in
it (``"[/x]"@evil.test`` once crashed ``queue list`` and could have forged output), so the consoles
have markup, emoji and highlighting off, and table cells are plain ``Text``. When the output is not a
terminal (a pipe, a file, a test), lines are never wrapped and table columns never cut: the console
is as wide as the widest line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

NOT_A_TERMINAL_WIDTH = 1 << 16  # wide enough for any line we print: nothing is wrapped or cut

JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document (an array of objects, keys in "
                                                      "docs/cli.md) instead of a table")]


def make_console(stderr: bool = False) -> Console:
    out = Console(stderr=stderr, markup=False, emoji=False, highlight=False)
    if not out.is_terminal:
        out.width = NOT_A_TERMINAL_WIDTH
    return out


console = make_console()
err_console = make_console(stderr=True)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    table = Table(*headers)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)


def print_json(document: list[dict[str, Any]]) -> None:
    """One JSON document on stdout: an array of objects with the stable keys listed in docs/cli.md."""
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def error(message: str) -> None:
    err_console.print(Text.assemble(("error:", "red"), " ", message))
