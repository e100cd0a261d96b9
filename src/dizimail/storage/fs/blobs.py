"""Content-addressed blob files under ``root/ab/abcdef…`` (SHA-256 of the bytes).

Never must a referenced blob be missing: a blob is renamed into place (after
fsync of the file) before the database row that references it is committed,
and the directory is fsynced in between (``sync_dirs``, once per commit group).
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from pathlib import Path
from typing import BinaryIO

from dizimail.model.types import BlobRef
from dizimail.storage.fs.modes import make_private

_BLOB_ID = re.compile(r"[0-9a-f]{64}")  # SHA-256 hex: no path can be smuggled in

_BUFFER = 256 * 1024


class FsBlobWriter:
    def __init__(self, root: str, tmp_dir: str) -> None:
        self._root = root
        self._tmp = f"{tmp_dir}/{uuid.uuid4().hex}.tmp"
        # 0600 from creation: messages are nobody else's business (the umask may be laxer)
        fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self._file: BinaryIO | None = open(fd, "wb", buffering=_BUFFER)
        self._hash = hashlib.sha256()
        self._size = 0

    def write(self, data: bytes) -> None:
        assert self._file is not None, "write after finish"
        self._file.write(data)
        self._hash.update(data)
        self._size += len(data)

    def finish(self) -> BlobRef:
        assert self._file is not None, "finish twice"
        digest = self._hash.hexdigest()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        directory = f"{self._root}/{digest[:2]}"  # fan-out directories exist from start-up
        # Same name means same bytes: replacing an existing copy is harmless.
        os.replace(self._tmp, f"{directory}/{digest}")
        return BlobRef(id=digest, size=self._size, directory=directory)

    def peek(self, limit: int) -> bytes:
        assert self._file is not None, "peek after finish"
        self._file.flush()
        with open(self._tmp, "rb") as handle:
            return handle.read(limit)

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass


class FsBlobStore:
    def __init__(self, root: Path, tmp_dir: Path) -> None:
        self.root = root
        self.tmp_dir = tmp_dir
        self._root_s, self._tmp_s = str(root), str(tmp_dir)
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for i in range(256):  # pre-create fan-out dirs so their entries are durable up front
            (root / f"{i:02x}").mkdir(mode=0o700, exist_ok=True)
        self.sync_dirs({str(root), str(tmp_dir)})

    def _path(self, blob_id: str) -> str:
        if _BLOB_ID.fullmatch(blob_id) is None:
            raise ValueError(f"bad blob id {blob_id!r}")
        return f"{self._root_s}/{blob_id[:2]}/{blob_id}"

    def writer(self) -> FsBlobWriter:
        return FsBlobWriter(self._root_s, self._tmp_s)

    def open(self, blob_id: str) -> BinaryIO:
        return open(self._path(blob_id), "rb")

    def exists(self, blob_id: str) -> bool:
        return os.path.exists(f"{self._root_s}/{blob_id[:2]}/{blob_id}")

    def discard(self, blob_id: str) -> None:
        """A rename into the spool directory (same filesystem): a quarter of an unlink's cost on
        ext4, so the sweeper's transaction stays short; ``purge`` unlinks later, off the writer."""
        try:
            os.rename(self._path(blob_id), f"{self._tmp_s}/{blob_id}.dead")
        except FileNotFoundError:
            pass

    def purge(self) -> int:
        removed = 0
        for p in self.tmp_dir.glob("*.dead"):
            p.unlink(missing_ok=True)
            removed += 1
        return removed

    def sync_dirs(self, directories: set[str]) -> None:
        for d in directories:
            fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def make_private(self) -> None:
        """Directories made by a version that created them 0755 become 0700 (the node's start)."""
        make_private(self.root)
        make_private(self.tmp_dir)

    def clean_tmp(self) -> int:
        """Remove partial files left by a crash, and discarded blobs a crash left unpurged
        (called at start-up, before listening)."""
        removed = 0
        for p in self.tmp_dir.glob("*.tmp"):
            p.unlink(missing_ok=True)
            removed += 1
        return removed + self.purge()
