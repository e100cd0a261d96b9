"""The import-linter contracts in pyproject.toml hold the layering (CONVENTIONS.md "Layering"): a copy of
the source with deliberate violations must fail them, one contract per violation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO

LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")
VIOLATIONS = {
    # file (under src/dizimail) -> an import it must never have, and the contract that says so
    "storage/sqlite/db.py": ("from dizimail.services import policy", "Layers"),
    "services/ingest.py": ("from dizimail.storage.sqlite import db", "Front-ends never touch storage"),
    "net/listener.py": ("from dizimail.services import limits", "Layers"),
    "smtp/session.py": ("from dizimail.imap import base", "Front-ends are independent of each other"),
    "codec/body.py": ("import asyncio", "Codecs, model and util do no I/O and know nothing above them"),
}


def test_the_real_tree_keeps_every_contract() -> None:
    result = subprocess.run([LINT_IMPORTS], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:]


def test_each_deliberate_violation_breaks_its_contract(tmp_path: Path) -> None:
    for name, (line, contract) in VIOLATIONS.items():
        copy = tmp_path / name.replace("/", "_")
        shutil.copytree(REPO / "src", copy / "src")
        shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
        target = copy / "src" / "dizimail" / name
        target.write_text(target.read_text() + f"\n{line}  # deliberate violation\n")
        env = dict(os.environ, PYTHONPATH=str(copy / "src"))
        result = subprocess.run([LINT_IMPORTS], cwd=copy, capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode != 0, f"{name}: {line} passed the contracts"
        assert f"{contract} BROKEN" in result.stdout, (name, result.stdout[-1500:])
        assert str(copy / "src") in result.stdout or "dizimail" in result.stdout


def test_sub_commands_do_not_import_the_entry_point() -> None:
    """cli/main.py imports the sub-command modules; they take what they share from cli/common.py, so
    there is no import cycle between the entry point and its sub-commands."""
    code = ("import sys, dizimail.cli.admin, dizimail.cli.queue, dizimail.cli.routing, dizimail.cli.server; "
            "assert 'dizimail.cli.main' not in sys.modules, 'a sub-command imports the entry point'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-1000:]
