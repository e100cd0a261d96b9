"""The master key file: encrypts the passwords the node must keep (fetch accounts, the smarthost's).

Kept beside the database, never in it: a copy of the database (a backup, a stolen file) does not reveal
them without this file too. Created once, 0600, atomically (two processes starting together agree on
one key: the file appears by ``link``, which never replaces).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from cryptography.fernet import Fernet


class KeyFileError(Exception):
    pass


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path``; made (with its 0700 directory) when there is none yet."""
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(Fernet.generate_key() + b"\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made it first: use that one
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        tmp.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        key = f.read(256).strip()
    try:
        Fernet(key)
    except ValueError as exc:
        raise KeyFileError(f"{path} does not hold a key (32 bytes, URL-safe base64)") from exc
    return key
