"""Limits shared by every session of this process: connections per IP, bytes held in memory."""

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


class MemoryBudget:
    """Bytes that all sessions together may hold in memory for client data not yet processed (IMAP
    literals): each session takes before it buffers and gives back when done, so many connections
    announcing large literals at once cannot grow the node past ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    def take(self, size: int) -> bool:
        """Reserve ``size`` bytes; False (nothing reserved) when that would pass the limit."""
        if size > self.limit - self.in_use:
            return False
        self.in_use += size
        return True

    def give(self, size: int) -> None:
        self.in_use = max(0, self.in_use - size)
