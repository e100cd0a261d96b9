"""BayesStore: the content filter's token counts (anti-spam layer 4), one model per name ("" the global
model; a user's address for a personal one). WhitelistStore: the automatic whitelist (layer 3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from dizimail.model.spam import SpamSetting


class BayesStore(Protocol):
    async def load_model(self, name: str) -> tuple[int, int, dict[str, list[int]], int]:
        """(spam messages, ham messages, token → [spam, ham], version); empty for an unknown name."""

    async def model_version(self, name: str) -> int:
        """Changes with every :meth:`apply` (by any process); 0 for an unknown name."""

    async def model_counts(self, name: str) -> tuple[int, int, int]:
        """(spam messages, ham messages, version) without the tokens; zeros for an unknown name."""

    async def apply(self, name: str, nspam: int, nham: int, tokens: Mapping[str, tuple[int, int]]) -> int:
        """Add the deltas (message counts and per-token counts, negative to unlearn; no count goes below
        0) in one transaction; returns the new version."""

    async def learned_as(self, name: str, blob_id: str) -> bool | None:
        """How model ``name`` learnt the message: True spam, False ham, None not at all."""

    async def mark_learned(self, name: str, blob_id: str, spam: bool) -> None: ...


class WhitelistStore(Protocol):
    async def awl_get(self, sender: str, domains: Sequence[str]) -> dict[str, tuple[int, bool]]:
        """Per recipient domain that knows ``sender``: (clean messages counted, whether a local user wrote to it)."""

    async def awl_add(self, pairs: Sequence[tuple[str, str]], clean: int = 0, written: bool = False) -> None:
        """For each (sender, domain): add ``clean`` messages, and mark it written-to if ``written``."""

    async def awl_remove(self, pairs: Sequence[tuple[str, str]]) -> int:
        """Forget these (sender, domain) pairs; how many there were."""

    async def awl_expire(self, before: float) -> int:
        """Forget pairs last added to before ``before`` (a timestamp); how many."""


class SpamSettingsStore(Protocol):
    """Per-domain and per-user spam settings (thresholds, personal models), changed at run time."""

    async def list_spam_settings(self) -> list[SpamSetting]: ...

    async def spam_settings_version(self) -> tuple[int, float]:
        """Changes whenever a setting is put or removed (by any process)."""

    async def put_spam_setting(self, setting: SpamSetting) -> None:
        """Insert or replace the setting of ``setting.scope``."""

    async def remove_spam_setting(self, scope: str) -> bool:
        """False if ``scope`` had none."""
