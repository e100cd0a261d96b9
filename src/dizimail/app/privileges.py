"""Started as root with ``server.run_as``, a node (or a command) works as that service user.

What root does, and never more:

* reads what the service user cannot change: the config file and the TLS certificate and key (the key
  stays root's, 0600: it is loaded before the drop). :func:`check` refuses to go on when the service
  user could have changed any of them, or any directory or link on their paths (it owns one, or may
  write one without a sticky bit protecting root's entries), or planted a link among the data files;
* hands over the data the service user writes (:func:`hand_over`): the database files, the blob and
  spool directories, the master key. Through file descriptors opened without following links, and
  only entries root owns with a single link: a link to ``/etc/shadow`` is never chowned;
* binds the ports. The database and blobs are opened while the effective user is already the service
  user (:func:`acting_as`), so every file they create is the service user's and nothing the service
  user planted is ever opened with root's rights; then :func:`become` drops root for good.

The data directory becomes ``root:<service group>`` mode 1770 (like Debian's crontab spool): the
service user creates its files there (the database's ``-wal`` and ``-shm``), but the sticky bit keeps
it from renaming or replacing root's config and certificate directory.
"""

from __future__ import annotations

import errno
import logging
import os
import pwd
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dizimail.config.schema import Config

log = logging.getLogger("dizimail.app")
DATA_DIR_MODE = 0o1770


class UnsafeDataDir(Exception):
    """The service user could have tampered with something root would act on: refuse to start."""


@dataclass(frozen=True)
class ServiceUser:
    name: str
    uid: int
    gid: int
    groups: frozenset[int]  # every group the user can hold (a process of it elsewhere may have them all)


def service_user(config: Config) -> ServiceUser | None:
    """``server.run_as`` when we are root and it names another user; None when there is nothing to drop."""
    name = config.server.run_as
    if os.geteuid() != 0 or not name:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise UnsafeDataDir(f"server.run_as: there is no user {name!r}") from None
    if entry.pw_uid == 0:
        return None
    return ServiceUser(name, entry.pw_uid, entry.pw_gid, frozenset(os.getgrouplist(name, entry.pw_gid)))


def _why_unsafe(path: Path, user: ServiceUser, *, final_may_be_shared: bool = False) -> str | None:
    """Why ``user`` could change what ``path`` names (its owner, a writable directory or a link on the way,
    named or resolved), or None. ``final_may_be_shared``: ``path`` is a sticky directory root owns."""
    path = Path(os.path.abspath(path))
    real = Path(os.path.realpath(path))
    for p in dict.fromkeys([path, *path.parents, real, *real.parents]):
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            return f"{p} does not exist"
        if st.st_uid == user.uid:
            return f"{p} belongs to {user.name}"
        if stat.S_ISLNK(st.st_mode):
            continue  # a link's own mode means nothing; who may replace it is its directory's business
        writable = st.st_mode & stat.S_IWOTH or (st.st_gid in user.groups and st.st_mode & stat.S_IWGRP)
        if not writable:
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX and (p != path or final_may_be_shared):
            continue  # sticky: the user may add entries but not rename or replace root's
        return f"{p} is writable by {user.name}"
    return None


def _state_paths(config: Config) -> list[Path]:
    """What the service user owns and writes: database files, blob and spool directories, master key."""
    db = config.path(config.storage.database)
    key = config.path(config.storage.master_key)
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"), db.with_name(db.name + "-journal"),
            config.path(config.storage.blob_dir), config.path(config.storage.spool_dir), key.parent, key]


def _program_paths() -> list[Path]:
    """Where the running program lives: the interpreter, dizimail's package and each directory of the
    import path that modules were loaded from (more load on first use, and the queue runner is a
    child process). Import-path entries nothing came from (root's own ~/.local) are not asked for."""
    import dizimail

    loaded = {os.path.dirname(f) for m in list(sys.modules.values()) if isinstance(f := getattr(m, "__file__", None), str)}
    paths = [Path(sys.executable), Path(os.path.realpath(sys.executable)), Path(dizimail.__file__).parent]
    paths += [Path(p) for p in sys.path if p and os.path.isdir(p)
              and any(d == p or d.startswith(p + os.sep) for d in loaded)]
    return list(dict.fromkeys(paths))


def unreadable_program(user: ServiceUser) -> Path | None:
    """The first place of the program the service user could not read (or run), or None."""
    wanted = [(path, os.R_OK | os.X_OK if path.is_dir() or path == Path(sys.executable) else os.R_OK)
              for path in _program_paths()]  # looked at as root: the user may not even see them
    with acting_as(user):
        for path, mode in wanted:
            if not os.access(path, mode, effective_ids=True):
                return path
    return None


def check(config: Config, config_path: Path | None, user: ServiceUser) -> None:
    """Refuse (UnsafeDataDir) a setup the service user could have tampered with in a way that matters,
    or one in which it could not go on (a program it cannot read)."""
    if (where := unreadable_program(user)) is not None:
        raise UnsafeDataDir(f"server.run_as: {user.name} cannot read {where}, and the node needs its program "
                            f"after it stops being root (modules load on first use, the queue runner is a child "
                            f"process); install dizimail where {user.name} can read it (under /opt, say), or "
                            f"leave run_as empty")
    fix = (f"; make sure it is as you meant, then give it to root and take the write permission from "
           f"{user.name} (chown root, chmod go-w)")
    reads = [config_path] if config_path is not None else []
    reads += [config.path(config.tls.cert_file), config.path(config.tls.key_file)]
    for path in reads:
        if path.exists() and (why := _why_unsafe(path, user)):
            raise UnsafeDataDir(f"refusing to run as root over {path}: {why}{fix}")
    data_dir = config.server.data_dir
    if why := _why_unsafe(data_dir, user, final_may_be_shared=True):
        raise UnsafeDataDir(f"refusing to run as root over the data directory {data_dir}: {why}{fix}")
    for path in _state_paths(config):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode) and st.st_uid != 0:
            raise UnsafeDataDir(f"refusing to start: {path} is a symbolic link made by uid {st.st_uid}, where "
                                "dizimail expects its own file; remove it")


def hand_over(config: Config, user: ServiceUser) -> None:
    """Give the service user the data it writes; the data directory becomes root:<its group> 1770."""
    data_dir = config.server.data_dir
    fd = os.open(data_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if st.st_uid == 0 and (st.st_gid != user.gid or stat.S_IMODE(st.st_mode) != DATA_DIR_MODE):
            os.fchown(fd, 0, user.gid)
            os.fchmod(fd, DATA_DIR_MODE)
    finally:
        os.close(fd)
    for path in _state_paths(config):
        _give(path, user, children=path in (config.path(config.storage.blob_dir),
                                            config.path(config.storage.spool_dir)))


def let_read(path: Path, user: ServiceUser) -> None:
    """The config must be readable by the service user (the queue-runner child reads it), never writable."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # its path was checked: nothing on it is the user's
    try:
        st = os.fstat(fd)
        readable = st.st_mode & stat.S_IROTH or (st.st_gid in user.groups and st.st_mode & stat.S_IRGRP)
        if st.st_uid == 0 and not readable:
            os.fchown(fd, 0, user.gid)
            os.fchmod(fd, (stat.S_IMODE(st.st_mode) | stat.S_IRGRP) & ~0o022)
    finally:
        os.close(fd)


def _give(path: Path, user: ServiceUser, *, children: bool) -> None:
    """chown a file or directory (and, with ``children``, the directories right below it) that root owns;
    by descriptor, never through a link, never an inode with other names (a hard link to a system file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return  # a link root made (check() refused any other): the admin's choice, not ours to chown
        raise
    try:
        _give_fd(fd, path, user)
        if children and stat.S_ISDIR(os.fstat(fd).st_mode):
            for entry in os.scandir(fd):
                if entry.is_dir(follow_symlinks=False):
                    try:
                        child = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC,
                                        dir_fd=fd)
                    except OSError as exc:  # replaced by something else since it was listed
                        raise UnsafeDataDir(f"refusing to start: {path / entry.name}: {exc.strerror}") from exc
                    try:
                        _give_fd(child, path / entry.name, user)
                    finally:
                        os.close(child)
    finally:
        os.close(fd)


def _give_fd(fd: int, path: Path, user: ServiceUser) -> None:
    st = os.fstat(fd)
    if st.st_uid != 0:
        return
    if not stat.S_ISDIR(st.st_mode) and (not stat.S_ISREG(st.st_mode) or st.st_nlink != 1):
        raise UnsafeDataDir(f"refusing to start: {path} is not a plain file of dizimail's (it has "
                            f"{st.st_nlink} names, or is a device or pipe); remove it")
    os.fchown(fd, user.uid, user.gid)


def prepare(config: Config, config_path: Path | None, user: ServiceUser) -> None:
    check(config, config_path, user)
    hand_over(config, user)
    if config_path is not None:
        let_read(config_path, user)


@contextmanager
def acting_as(user: ServiceUser | None) -> Iterator[None]:
    """Run the block with the service user's effective ids (files opened and created are checked against
    and owned by it); root's saved id lets the process come back to bind ports afterwards."""
    if user is None:
        yield
        return
    os.setgroups([])
    os.setegid(user.gid)
    os.seteuid(user.uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def become(user: ServiceUser | None) -> None:
    """Drop root for good (real, effective and saved ids)."""
    if user is None:
        return
    os.setgroups([])
    os.setgid(user.gid)
    os.setuid(user.uid)
    log.info("node.privileges.dropped user=%s", user.name)


def enter(config: Config, config_path: Path | None) -> None:
    """A command that works on the data directory (not ``serve``, which binds first): check, hand over,
    drop. A no-op unless root with ``server.run_as``."""
    user = service_user(config)
    if user is not None:
        prepare(config, config_path, user)
        become(user)
