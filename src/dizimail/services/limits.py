"""Per-IP connection counting shared by every listener of this process."""

from __future__ import annotations


class ConnectionLimiter:
    def __init__(self, max_per_ip: int) -> None:
        self.max_per_ip = max_per_ip
        self._open: dict[str, int] = {}

    def acquire(self, ip: str) -> bool:
        """Count a new connection; False (and nothing counted) when the IP is at its limit."""
        n = self._open.get(ip, 0)
        if n >= self.max_per_ip:
            return False
        self._open[ip] = n + 1
        return True

    def release(self, ip: str) -> None:
        n = self._open.get(ip, 0) - 1
        if n <= 0:
            self._open.pop(ip, None)
        else:
            self._open[ip] = n

    def count(self, ip: str) -> int:
        return self._open.get(ip, 0)
