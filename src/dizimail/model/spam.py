"""Value types of the spam score's per-domain and per-user settings (anti-spam, issue #10)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Levels:
    """The spam scores (0-10) from which a recipient's mail is tagged, put in Junk, refused."""

    tag_at: float
    junk_at: float
    reject_at: float


@dataclass(frozen=True, slots=True)
class SpamSetting:
    """One domain's (``scope`` a domain) or one user's (``scope`` an address) settings; None inherits
    (a user's from their domain's, a domain's from ``[antispam]``). ``personal``: the user's Junk
    folder also trains a model of their own, which scores their mail once it has learnt enough."""

    scope: str
    tag_at: float | None = None
    junk_at: float | None = None
    reject_at: float | None = None
    personal: bool | None = None
    updated: float = 0.0
