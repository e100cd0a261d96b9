"""Users' Sieve scripts as stored (issue #12)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScriptInfo:
    name: str
    active: bool
    size: int  # octets of the text (UTF-8)
    updated: float


@dataclass(frozen=True)
class ActiveScript:
    """The script that runs for an account's mail; ``version`` changes whenever its text does."""

    script_id: int
    version: int
