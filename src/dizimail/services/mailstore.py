"""Mailbox semantics written once for POP3 now, IMAP and webmail later (CONVENTIONS habit 7).

POP3's maildrop is the INBOX: a snapshot of its index rows taken at login,
messages read as the per-recipient prefix followed by the shared blob, and
deletions applied in one transaction at QUIT (RFC 1939 §6 UPDATE state).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from dizimail.interfaces import BlobStore, MetaStore
from dizimail.model.errors import MailError, TemporaryFailure
from dizimail.model.types import Account, MailboxInfo, MessageEntry

CHUNK = 256 * 1024
SMALL = 128 * 1024


class MaildropBusy(MailError):
    def __init__(self) -> None:
        super().__init__(True, 0, "", "maildrop_in_use", "another POP3 session holds this maildrop")


@dataclass
class Maildrop:
    account: Account
    mailbox: MailboxInfo
    messages: list[MessageEntry]

    def uidl(self, entry: MessageEntry) -> str:
        """Stable across sessions and restarts: UIDVALIDITY and UID never change for a message."""
        return f"{self.mailbox.uidvalidity}.{entry.uid}"


class Mailstore:
    def __init__(self, meta: MetaStore, blobs: BlobStore) -> None:
        self.meta = meta
        self.blobs = blobs
        self._locked: set[int] = set()

    async def open_maildrop(self, account: Account) -> Maildrop:
        """Lock and snapshot the INBOX (RFC 1939 §8: exclusive access); raises MaildropBusy."""
        if account.id in self._locked:
            raise MaildropBusy()
        self._locked.add(account.id)
        try:
            box = await self.meta.get_mailbox(account.id, "INBOX")
            if box is None:
                raise TemporaryFailure(f"INBOX missing for {account.address}")
            return Maildrop(account, box, await self.meta.list_messages(box.id))
        except BaseException:
            self._locked.discard(account.id)
            raise

    def release(self, drop: Maildrop) -> None:
        self._locked.discard(drop.account.id)

    async def read_chunks(self, entry: MessageEntry) -> AsyncIterator[bytes]:
        """The message as stored: prefix (trace headers) then the blob, in chunks."""
        yield entry.prefix
        if entry.size <= SMALL:  # page-cache reads of small files cost less than a thread hop
            with self.blobs.open(entry.blob_id) as small:
                yield small.read()
            return
        handle = await asyncio.to_thread(self.blobs.open, entry.blob_id)
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk
        finally:
            handle.close()

    async def read_message(self, entry: MessageEntry) -> bytes:
        return b"".join([c async for c in self.read_chunks(entry)])

    async def expunge(self, drop: Maildrop, uids: list[int]) -> int:
        if not uids:
            return 0
        return await self.meta.expunge(drop.mailbox.id, uids)
