"""The date parts of RFC 5260 §4.2 (the date and currentdate tests), as Pigeonhole writes them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

MJD_EPOCH = date(1858, 11, 17)  # the Modified Julian Day's day 0 (RFC 5260 §4.2 "julian")


def zone_of(offset: str) -> timezone:
    sign = -1 if offset[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))


def parse_date(value: str) -> datetime | None:
    """An RFC 5322 date-time with its own zone, or None."""
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return when


def in_zone(when: datetime, zone: str | None) -> datetime:
    """``zone``: "+hhmm"; "" keeps the date's own zone; None the server's local one."""
    if zone == "":
        return when
    if zone is None:
        return when.astimezone()
    return when.astimezone(zone_of(zone))


def _offset(when: datetime) -> str:
    delta = when.utcoffset() or timedelta()
    minutes = int(delta.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _iso8601(when: datetime) -> str:
    offset = _offset(when)
    zone = "Z" if offset == "+0000" else f"{offset[:3]}:{offset[3:]}"
    return f"{when:%Y-%m-%dT%H:%M:%S}{zone}"


_PARTS: dict[str, Callable[[datetime], str]] = {
    "year": lambda w: f"{w.year:04d}", "month": lambda w: f"{w.month:02d}", "day": lambda w: f"{w.day:02d}",
    "date": lambda w: f"{w.year:04d}-{w.month:02d}-{w.day:02d}", "julian": lambda w: str((w.date() - MJD_EPOCH).days),
    "hour": lambda w: f"{w.hour:02d}", "minute": lambda w: f"{w.minute:02d}", "second": lambda w: f"{w.second:02d}",
    "time": lambda w: f"{w.hour:02d}:{w.minute:02d}:{w.second:02d}", "iso8601": _iso8601,
    "std11": lambda w: (f"{_DAYS[w.weekday()]}, {w.day:02d} {_MONTHS[w.month - 1]} {w.year:04d} "
                        f"{w.hour:02d}:{w.minute:02d}:{w.second:02d} {_offset(w)}"),
    "zone": _offset, "weekday": lambda w: str((w.weekday() + 1) % 7),  # 0 is Sunday
}


def date_part(when: datetime, part: str) -> str | None:
    """The part as a string; None for a part that does not exist."""
    format_part = _PARTS.get(part)
    return None if format_part is None else format_part(when)


def now() -> datetime:
    return datetime.now(UTC)
