"""A folder out and in as files (issue #13, the seed's 邮件备份): out as mbox (mboxrd: a "From " line before each
message, body lines starting with ">*From " quoted once more) or as a zip of .eml files, streamed message
by message whatever the folder holds; in from an mbox, each message appended as IMAP APPEND would (the
quota counts), its flags from the Status/X-Status lines mail programs write."""

from __future__ import annotations

import asyncio
import re
import time
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from email.utils import parseaddr
from typing import IO, BinaryIO, cast

from dizimail.codec.mime.text import header_text
from dizimail.model.errors import InvalidInput, MailError
from dizimail.model.types import Account
from dizimail.services.ingest import Ingest
from dizimail.services.mailstore import Mailstore
from dizimail.services.webmail import safe_filename

BATCH = 200  # messages read from the store at once
MAX_IMPORT_MESSAGE = 64 << 20  # octets of one message of an imported mbox (past it: skipped, counted)
MAX_LINE = 1 << 20
_QUOTED_FROM = re.compile(rb"^>*From ")


@dataclass(frozen=True)
class ImportResult:
    added: int
    skipped: int  # too large, or refused (the quota)


def _from_line(sender: str, when: float) -> bytes:
    address = parseaddr(sender)[1] or "MAILER-DAEMON"
    address = re.sub(r"[^\x21-\x7e]", "_", address)[:200]
    return f"From {address} {time.strftime('%a %b %d %H:%M:%S %Y', time.gmtime(when))}\n".encode()


def _mboxrd(raw: bytes) -> bytes:
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"\n".join(b">" + line if _QUOTED_FROM.match(line) else line for line in lines) + b"\n\n"


class _Chunks:
    """A write-only file for zipfile: what it writes waits here until taken."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.written = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.written += len(data)
        return len(data)

    def tell(self) -> int:
        return self.written

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


async def export(mailstore: Mailstore, account: Account, folder: str, kind: str) -> AsyncIterator[bytes]:
    """The folder's messages, oldest first, as mbox (``kind`` mbox) or a zip of .eml files (``zip``)."""
    view = await mailstore.select(account, folder, readonly=True)
    uids = list(view.uids)
    sink = _Chunks()
    archive = zipfile.ZipFile(cast(IO[bytes], sink), "w", zipfile.ZIP_STORED) if kind == "zip" else None
    for start in range(0, len(uids), BATCH):
        batch = uids[start:start + BATCH]
        entries = await view.load(batch)
        for uid in batch:
            entry = entries.get(uid)
            if entry is None:
                continue  # expunged meanwhile
            raw = await mailstore.read_message(entry)
            if archive is None:
                head = header_text(raw[:raw.find(b"\r\n\r\n") + 2] if b"\r\n\r\n" in raw else raw[:65536])
                yield _from_line((head.get("from") or [""])[0], entry.internal_date) + await asyncio.to_thread(
                    _mboxrd, raw)
            else:
                info = zipfile.ZipInfo(f"{uid:08d}.eml", time.gmtime(max(entry.internal_date, 315532800))[:6])
                await asyncio.to_thread(archive.writestr, info, raw)
                yield sink.take()
    if archive is not None:
        archive.close()
        yield sink.take()


def export_name(folder: str, kind: str) -> str:
    return safe_filename(folder.replace("/", "-"), "folder") + (".mbox" if kind == "mbox" else ".zip")


def _next_message(source: BinaryIO, first: bytes | None) -> tuple[bytes | None, bytes | None, tuple[str, ...]]:
    """In a worker thread: the next message of an mbox (its "From " line already read as ``first``): its bytes
    with CRLF line ends and ">From " unquoted (None past MAX_IMPORT_MESSAGE), the next "From " line (None at
    the end), and the flags its Status / X-Status lines give."""
    lines: list[bytes] = []
    size, too_big, in_header, flags = 0, False, True, set[str]()
    while True:
        line = source.readline(MAX_LINE)
        if not line or line.startswith(b"From "):
            while lines and lines[-1] in (b"\r\n", b""):
                lines.pop()  # the blank line before the next "From "
            data = None if too_big or first is None else b"".join(lines)
            return data, (line or None), tuple(sorted(flags))
        line = line.rstrip(b"\r\n")
        if in_header and line == b"":
            in_header = False
        elif in_header and line[:7].lower() in (b"status:", b"x-statu"):
            value = line.split(b":", 1)[1]
            flags |= {f for c, f in ((b"R", "\\Seen"), (b"A", "\\Answered"), (b"F", "\\Flagged"), (b"D", "\\Deleted"))
                      if c in value}
            continue  # the mbox's own bookkeeping, not the message's
        if _QUOTED_FROM.match(line):
            line = line[1:]
        size += len(line) + 2
        too_big = too_big or size > MAX_IMPORT_MESSAGE
        if not too_big:
            lines.append(line + b"\r\n")


async def import_mbox(ingest: Ingest, account: Account, folder: str, source: BinaryIO,
                      progress: Callable[[int], None] | None = None) -> ImportResult:
    """Each message of the mbox ``source`` appended to ``folder`` (quota counted, as IMAP APPEND)."""
    added = skipped = 0
    first = await asyncio.to_thread(source.readline, MAX_LINE)
    if not first.startswith(b"From "):
        raise InvalidInput("bad_mbox", "an mbox starts with a \"From \" line")
    line: bytes | None = first
    while line is not None:
        data, line, flags = await asyncio.to_thread(_next_message, source, line)
        if not data:
            skipped += 1
            continue
        try:
            await ingest.append(account, folder, data, tuple(f for f in flags if f != "\\Deleted"), None)
            added += 1
        except MailError:
            skipped += 1
        if progress is not None:
            progress(added)
    return ImportResult(added, skipped)
