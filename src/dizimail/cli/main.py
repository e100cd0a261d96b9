"""Entry point: ``dizimail`` and its sub-commands (each module registers its own on the shared app)."""

from __future__ import annotations

import os
from typing import Any

from dizimail.cli import access, admin, audit, lists, quarantine, queue, reports, routing, server, sieve, spam, tokens  # noqa: F401  (each registers its commands)
from dizimail.cli.common import app


def main() -> Any:
    """``dizimail``: every sub-command, the server and its queue-runner child start here."""
    os.umask(0o077)  # whatever the data directory gains is private: hashes, fetch passwords, DKIM keys, mail
    return app()
