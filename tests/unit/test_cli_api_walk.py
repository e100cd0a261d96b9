"""CLI and API are equal forms of the same service functions (issue #11): every command of `dizimail` has
its API route in docs/api.md's table, or the reason it has none; every route named there exists."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer.main

from dizimail.cli.main import app
from dizimail.web.api import WebContext, make_app

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
ROW = re.compile(r"^\| `([a-z -]+)` \| (.+) \|$")
ROUTE = re.compile(r"^`(GET|POST|PUT|PATCH|DELETE) (/api/v1/\S*)`$")


def commands(group: Any, prefix: str = "") -> list[str]:
    found = []
    for name, sub in getattr(group, "commands", {}).items():
        full = f"{prefix} {name}".strip()
        found += commands(sub, full) if getattr(sub, "commands", None) else [full]
    return found


def table() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## The command line and the API", 1)[1].split("\n## ", 1)[0]
    return {m[1]: m[2] for line in section.splitlines() if (m := ROW.match(line))}


def test_every_command_has_its_route_or_a_reason_and_every_route_exists() -> None:
    cli = set(commands(typer.main.get_command(app)))
    rows = table()
    assert cli - rows.keys() == set(), "commands missing from docs/api.md"
    assert rows.keys() - cli == set(), "docs/api.md names commands that do not exist"
    paths = make_app(WebContext(*[None] * 12, (1, 1), *[None] * 11)).openapi()["paths"]  # type: ignore[arg-type]
    for command, api in rows.items():
        route = ROUTE.match(api)
        if route is None:
            assert api.startswith(("none: ", "not yet")), (command, api)
            continue
        method, path = route[1].lower(), route[2]
        assert method in paths.get(path, {}), (command, api)
