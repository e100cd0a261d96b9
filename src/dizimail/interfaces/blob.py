"""BlobStore: raw RFC 5322 message bytes, content-addressed, written once."""

from __future__ import annotations

from typing import BinaryIO, Protocol

from dizimail.model.types import BlobRef


class BlobWriter(Protocol):
    """A message being received. Nothing is visible until :meth:`finish`."""

    def write(self, data: bytes) -> None:
        """Append bytes (buffered; cheap enough to call from the event loop)."""

    def finish(self) -> BlobRef:
        """Make the bytes durable (fsync) under their SHA-256 name. Blocking: run in a thread.

        The directory entry is made durable by :meth:`BlobStore.sync_dirs`,
        which the committer calls once for a whole group of messages before
        the database commit that references them.
        """

    def abort(self) -> None:
        """Drop the partial message."""

    def peek(self, limit: int) -> bytes:
        """The first ``limit`` bytes written so far (the checks at the end of DATA read the message
        before it is committed). Blocking: run in a thread."""


class BlobStore(Protocol):
    def writer(self) -> BlobWriter:
        """Start a new blob."""

    def open(self, blob_id: str) -> BinaryIO:
        """Open a stored blob for reading (raises FileNotFoundError-like OSError when absent)."""

    def exists(self, blob_id: str) -> bool:
        """Whether the blob's bytes are present."""

    def discard(self, blob_id: str) -> None:
        """Take an unreferenced blob out of reach at once and cheaply (the sweeper does it inside a
        database transaction); its space comes back with :meth:`purge`. Absent blobs are ignored."""

    def purge(self) -> int:
        """Free the space of discarded blobs; returns how many. Blocking: run in a thread."""

    def sync_dirs(self, directories: set[str]) -> None:
        """fsync the given directories so renames into them survive a power cut."""
