"""SettingsStore: run-time settings the operator changes without a restart (delivery concurrency, sealed
secrets such as the smarthost password). Readers ask the store on every use; a change made by another
process is seen within half a second."""

from __future__ import annotations

from typing import Protocol


class SettingsStore(Protocol):
    async def get_setting(self, key: str) -> str | None: ...

    async def set_setting(self, key: str, value: str) -> None: ...
