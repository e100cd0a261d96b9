"""File modes of the data directory: private to the node's user (issue 9: the database holds password
hashes, fetch passwords and DKIM keys; the blobs are everyone's mail)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


def make_private(path: Path) -> None:
    """Drop the group and other permission bits of a file or directory the caller owns, as an install
    from before they were created private left them. Never follows a symbolic link; a missing path or
    one owned by someone else is left alone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symbolic link: not ours to change through
            return
        raise
    try:
        st = os.fstat(fd)
        if st.st_uid == os.geteuid() and st.st_mode & 0o077:
            os.fchmod(fd, stat.S_IMODE(st.st_mode) & ~0o077)
    finally:
        os.close(fd)


def create_private(path: Path) -> None:
    """Create an empty file 0600 unless something is there already (a database before SQLite opens it:
    its -wal and -shm files take the database file's mode)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except FileExistsError:
        pass
