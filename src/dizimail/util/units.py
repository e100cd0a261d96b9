"""Parse the unit-suffixed values used in config: sizes ("25MB") and durations ("30m")."""

from __future__ import annotations

import re

_SIZE_UNITS = {"": 1, "B": 1, "KB": 1024, "K": 1024, "KIB": 1024, "MB": 1024**2, "M": 1024**2,
               "MIB": 1024**2, "GB": 1024**3, "G": 1024**3, "GIB": 1024**3, "TB": 1024**4, "T": 1024**4}
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_NUM = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)")  # fullmatch on the stripped value: \s*$ after \s* was quadratic


def parse_size(value: str | int) -> int:
    """Return a byte count for ``"25MB"``, ``"512KiB"``, ``"1G"`` or a plain integer (binary units)."""
    if isinstance(value, int):
        if value < 0:
            raise ValueError("size must not be negative")
        return value
    match = _NUM.fullmatch(value.strip())
    if not match or match.group(2).upper() not in _SIZE_UNITS:
        raise ValueError(f"not a size: {value!r} (use e.g. 25MB, 512KB, 1GB)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).upper()])


def parse_duration(value: str | int | float) -> float:
    """Return seconds for ``"30m"``, ``"5s"``, ``"2h"``, ``"500ms"`` or a plain number of seconds."""
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("duration must not be negative")
        return float(value)
    match = _NUM.fullmatch(value.strip())
    if not match or match.group(2) not in _DURATION_UNITS:
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 5m, 2h, 1d)")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def format_size(n: int) -> str:
    """Human-readable binary size, e.g. ``1.5 MiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
