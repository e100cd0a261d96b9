"""Virus scanning through ClamAV's clamd (INSTREAM, with ``aioclamd``), DESIGN.md §5.

A message is scanned whole (clamd decodes MIME and looks into archives itself, as deep as its
MaxRecursion allows). A scanner that is down, slow or answering an error never lets mail through
unscanned: the check tempfails it (451 4.7.1) and the client tries again later.

clamd reloads its signatures when their files change (its SelfCheck, every 600 s by Debian's default);
:meth:`VirusScanner.self_check` scans the EICAR test file, so a scanner that stopped detecting is noticed
(the node runs it hourly and logs ``antivirus.selfcheck.failed`` as an error).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import BinaryIO, cast

import aioclamd

from dizimail.services.cancel import raise_if_cancelling
from dizimail.services.resolver import split_hostport

log = logging.getLogger("dizimail.antivirus")
CHUNK = 256 * 1024  # bytes per INSTREAM chunk (clamd takes chunks up to its StreamMaxLength)
# The EICAR test file (eicar.org): every anti-virus product detects it; it is not a virus. Built from two
# halves so that this source file is not itself reported by a scanner.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


@dataclass(frozen=True, slots=True)
class ScanResult:
    status: str  # clean, infected, error
    virus: str = ""
    detail: str = ""


class _Chunks:
    """The message for ``aioclamd``'s INSTREAM, in chunks of :data:`CHUNK`.

    aioclamd asks for 1 KiB per read and runs every read in a thread: five thread hops for a 4 KiB
    message, 25,000 for a 25 MB one. A read here deliberately answers with up to CHUNK bytes whatever
    it is asked for; aioclamd sends each chunk with its own length, as INSTREAM wants."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._view[self._pos:self._pos + CHUNK]
        self._pos += len(chunk)
        return bytes(chunk)


class VirusScanner:
    def __init__(self, address: str, timeout: float) -> None:
        host, port = split_hostport(address, 3310)
        self.address = f"{host}:{port}"
        self.client = aioclamd.ClamdAsyncClient(host, port, timeout=timeout)

    async def scan(self, data: bytes) -> ScanResult:
        try:
            answer = await self.client.instream(cast(BinaryIO, _Chunks(data)))
        except (aioclamd.ClamdError, OSError, TimeoutError) as exc:
            raise_if_cancelling()  # the error may stand for a cancellation (services.cancel)
            log.warning("antivirus.unavailable clamd=%s error=%s", self.address, exc)
            return ScanResult("error", detail=f"{type(exc).__name__}: {exc}")
        if not answer:
            return ScanResult("error", detail="no answer")
        status, virus = next(iter(answer.values()))
        if status == "FOUND":
            return ScanResult("infected", virus or "unknown")
        if status == "OK":
            return ScanResult("clean")
        return ScanResult("error", detail=f"{status} {virus or ''}".strip())

    async def self_check(self) -> bool:
        """Whether clamd still detects the EICAR test file (logged as an error when it does not)."""
        result = await self.scan(EICAR)
        if result.status != "infected":
            log.error("antivirus.selfcheck.failed clamd=%s status=%s detail=%s", self.address, result.status,
                      result.detail)
            return False
        log.info("antivirus.selfcheck.ok clamd=%s signature=%s", self.address, result.virus)
        return True
