"""FUTURERELEASE (RFC 4865): a submitted message that asks to wait (``HOLDFOR=seconds`` or
``HOLDUNTIL=date-time`` on MAIL FROM) is accepted now and released at that time (issue #12, scheduled
sending). Offered to logged-in submission clients only, up to ``smtp.future_release_max``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from dizimail.model.errors import MailError


class ReleaseRefused(MailError):
    def __init__(self, code: int, enhanced: str, key: str, detail: str) -> None:
        super().__init__(False, code, enhanced, key, detail)


def offer(longest: float, now: float) -> str:
    """The EHLO keyword (RFC 4865 §3): the longest interval and the latest date-time."""
    latest = datetime.fromtimestamp(now + longest, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"FUTURERELEASE {int(longest)} {latest}"


def release_at(params: Mapping[str, str | None], now: float, longest: float) -> float | None:
    """When the message asks to be released (None: at once); ``longest``: 0 when this client may not ask
    (not offered: the parameter is unknown, 555). A time in the past releases it at once (RFC 4865 §4)."""
    hold_for, hold_until = params.get("HOLDFOR"), params.get("HOLDUNTIL")
    if hold_for is None and hold_until is None:
        return None
    if longest <= 0:
        raise ReleaseRefused(555, "5.5.4", "future_release_unavailable", "FUTURERELEASE is not offered here")
    if hold_for is not None and hold_until is not None:
        raise ReleaseRefused(501, "5.5.4", "future_release_both", "HOLDFOR and HOLDUNTIL together")
    if hold_for is not None:
        when = now + int(hold_for)
    else:
        assert hold_until is not None
        try:
            when = datetime.fromisoformat(hold_until.upper().replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise ReleaseRefused(501, "5.5.4", "future_release_bad", f"HOLDUNTIL {hold_until!r}") from None
    if when - now > longest:
        raise ReleaseRefused(554, "5.3.4", "future_release_too_far", f"{when - now:.0f} s > {longest:.0f} s")
    return when if when > now else None
