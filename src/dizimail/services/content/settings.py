"""Per-domain and per-user spam settings: the thresholds of the spam score (tag, Junk, refuse) and
whether a user's Junk folder trains a personal model. A user's setting overrides their domain's, which
overrides ``[antispam]``; each threshold separately. Changed with ``dizimail spam settings`` (later the
web admin and webmail), seen by a running node within two seconds."""

from __future__ import annotations

import time
from dataclasses import replace

from dizimail.config.schema import AntispamConfig
from dizimail.interfaces.bayes import SpamSettingsStore
from dizimail.model.errors import InvalidInput, NotFound
from dizimail.model.spam import Levels, SpamSetting
from dizimail.services.accounts import normalize_address, normalize_domain

CACHE_SECONDS = 2.0


def scope_of(*, domain: str | None = None, user: str | None = None) -> str:
    """The normal form of a setting's scope: a domain, or a user's address."""
    if (domain is None) == (user is None):
        raise InvalidInput("bad_setting", "give a domain or a user")
    return normalize_domain(domain) if domain is not None else normalize_address(user or "")


class SpamSettings:
    def __init__(self, store: SpamSettingsStore, config: AntispamConfig) -> None:
        self.store = store
        self.default = Levels(config.tag_at, config.junk_at, config.reject_at)
        self._settings: dict[str, SpamSetting] = {}
        self._version: tuple[int, float] | None = None
        self._checked = -1.0

    async def _current(self) -> dict[str, SpamSetting]:
        now = time.monotonic()
        if now - self._checked > CACHE_SECONDS:
            self._checked = now
            version = await self.store.spam_settings_version()
            if version != self._version:
                self._settings = {s.scope: s for s in await self.store.list_spam_settings()}
                self._version = version
        return self._settings

    async def levels(self, address: str) -> Levels:
        """The thresholds that apply to mail for ``address`` (lower-case)."""
        settings = await self._current()
        if not settings:
            return self.default
        return self._merge(settings.get(address.rpartition("@")[2]), settings.get(address))

    def _merge(self, domain: SpamSetting | None, user: SpamSetting | None) -> Levels:
        levels = self.default
        for s in (domain, user):
            if s is not None:
                levels = Levels(levels.tag_at if s.tag_at is None else s.tag_at,
                                levels.junk_at if s.junk_at is None else s.junk_at,
                                levels.reject_at if s.reject_at is None else s.reject_at)
        return levels

    async def personal(self, address: str) -> bool:
        """Whether ``address`` has a personal model (their setting, else their domain's)."""
        settings = await self._current()
        for scope in (address, address.rpartition("@")[2]):
            s = settings.get(scope)
            if s is not None and s.personal is not None:
                return s.personal
        return False

    async def entries(self) -> list[SpamSetting]:
        return await self.store.list_spam_settings()

    async def set(self, scope: str, *, tag_at: float | None = None, junk_at: float | None = None,
                  reject_at: float | None = None, personal: bool | None = None) -> SpamSetting:
        """Change the given values of ``scope`` (from :func:`scope_of`); the others stay as they were."""
        for value in (tag_at, junk_at, reject_at):
            if value is not None and not 0 <= value <= 10.5:
                raise InvalidInput("bad_setting", f"a spam score threshold is 0 to 10 (10.5: never), not {value}")
        old = next((s for s in await self.store.list_spam_settings() if s.scope == scope), SpamSetting(scope))
        new = replace(old, tag_at=old.tag_at if tag_at is None else tag_at,
                      junk_at=old.junk_at if junk_at is None else junk_at,
                      reject_at=old.reject_at if reject_at is None else reject_at,
                      personal=old.personal if personal is None else personal, updated=time.time())
        settings = dict(await self._current()) | {scope: new}
        user = "@" in scope
        levels = self._merge(settings.get(scope.rpartition("@")[2]) if user else new, new if user else None)
        if not levels.tag_at <= levels.junk_at <= levels.reject_at:
            raise InvalidInput("bad_setting", f"{scope} would tag at {levels.tag_at:g}, put in Junk at "
                                              f"{levels.junk_at:g}, refuse at {levels.reject_at:g}: "
                                              "each must be at most the next")
        await self.store.put_spam_setting(new)
        self._checked = -1.0
        return new

    async def remove(self, scope: str) -> None:
        if not await self.store.remove_spam_setting(scope):
            raise NotFound("bad_setting", f"{scope} has no spam settings")
        self._checked = -1.0
