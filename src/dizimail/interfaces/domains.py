"""DomainProfileStore: per-domain settings and logos, and self-registration requests (issue #11)."""

from __future__ import annotations

from typing import Protocol

from dizimail.model.domains import DomainProfile, Registration


class DomainProfileStore(Protocol):
    async def get_profile(self, domain: str) -> DomainProfile | None: ...

    async def put_profile(self, profile: DomainProfile) -> None:
        """Store the settings (the logo is kept)."""

    async def get_logo(self, domain: str) -> tuple[bytes, str] | None: ...

    async def set_logo(self, domain: str, data: bytes | None, media_type: str) -> None: ...

    async def remove_profile(self, domain: str) -> None:
        """Forget the domain's settings, logo and requests (the domain is gone)."""

    async def add_registration(self, domain: str, local_part: str, name: str, password_hash: str, ip: str) -> bool:
        """False when the same address was asked for already."""

    async def registrations(self, domain: str | None = None) -> list[Registration]: ...

    async def take_registration(self, reg_id: int) -> Registration | None:
        """Remove the request and return it (None if there is none)."""

    async def count_registrations(self, *, domain: str | None = None, ip: str | None = None,
                                  since: float = 0.0) -> int: ...
