"""State and lock files that only their owner controls.

The default state path is beside the manifest, often in a directory others can write to. A file there must not be
a symlink planted to make the tool overwrite something else, nor a file another user created (and can still edit)
to feed the tool false history. So each file is opened without following a symlink (``O_NOFOLLOW``), created only
where none exists (``O_EXCL``), and checked on the open descriptor (``fstat``: a regular file, owned by the
current user, no group/other permission bits, one name only), not on a path that could be swapped between check
and use. The directory holding it is checked first (``fleet.state.directory``: nobody else may remove or rename
its entries) and the file is opened relative to it. SQLite then opens the path itself; ``connect`` confirms that
it opened the very file that was checked.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
import urllib.parse
from pathlib import Path

from fleet.errors import FleetError
from fleet.state.directory import UnsafeStateDirectory, open_directory, warn_if_shared_directory

__all__ = [
    "SIDE_FILES",
    "UnsafeStateDirectory",
    "UnsafeStateFile",
    "check_owned",
    "check_side_files",
    "connect",
    "open_owned",
    "warn_if_shared_directory",
]

# SQLite's side files (WAL, shared memory, rollback journal): SQLite opens them by name, so they are checked too.
SIDE_FILES = ("-wal", "-shm", "-journal")


class UnsafeStateFile(FleetError):
    """A state or lock file that someone else could control (or that is not a plain file): not touched."""


def open_owned(path: Path, create: bool) -> int:
    """A read-write descriptor of ``path``, checked by ``check_owned``, in a directory checked by
    ``open_directory``; created 0600 (exclusively) when missing and ``create``. UnsafeStateFile (or
    UnsafeStateDirectory) otherwise."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # NONBLOCK: a planted FIFO cannot hang us
    directory = open_directory(path.parent)
    try:
        fd = _open_in(directory, path, flags, create)
    finally:
        os.close(directory)
    try:
        check_owned(os.fstat(fd), path)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_in(directory: int, path: Path, flags: int, create: bool) -> int:
    """``path``'s file, opened relative to its (checked) directory's descriptor."""
    try:
        try:
            return os.open(path.name, flags, dir_fd=directory)
        except FileNotFoundError:
            if not create:
                raise UnsafeStateFile(f"{path}: no such file") from None
            try:
                return os.open(path.name, flags | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=directory)
            except FileExistsError:  # created meanwhile by someone else: checked like any existing file
                return os.open(path.name, flags, dir_fd=directory)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeStateFile(
                f"{path}: is a symbolic link; refusing to follow it (remove it; the tool creates its own file)"
            ) from None
        if isinstance(exc, UnsafeStateFile):
            raise
        raise UnsafeStateFile(f"{path}: cannot open: {exc.strerror or exc}") from None


def check_owned(st: os.stat_result, path: Path) -> None:
    """A regular file of the current user, with no permission for group or others, and one name (a hard link
    elsewhere would let its maker read or replace the content, or make us write through it into another file);
    UnsafeStateFile otherwise."""
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeStateFile(f"{path}: not a regular file; refusing to use it")
    if st.st_nlink > 1:
        raise UnsafeStateFile(
            f"{path}: has {st.st_nlink} hard links (another name reaches the same file, and whoever made it "
            "could read, keep or change what the tool writes): refusing to use it (if it is yours: copy it to a "
            "new file and use that)"
        )
    if st.st_uid != os.geteuid():
        raise UnsafeStateFile(
            f"{path}: owned by uid {st.st_uid}, not by this user (uid {os.geteuid()}); someone else could have "
            "planted or edited it: refusing to use it (move it away and rerun, or run as its owner)"
        )
    if st.st_mode & 0o077:
        raise UnsafeStateFile(
            f"{path}: mode {stat.S_IMODE(st.st_mode):04o} lets group or others read or change it; refusing to use "
            f"it (if it is yours: chmod 600 {path})"
        )


_SIDE_NAMES = {"-wal": "write-ahead log", "-shm": "shared-memory index", "-journal": "rollback journal"}


def check_side_files(path: Path) -> None:
    """SQLite's side files of ``path``, where they exist, must pass ``check_owned`` too (not symlinks), and be
    readable and writable by their owner: one that SQLite cannot use is named as such (exit 2), not taken for a
    full disk."""
    for suffix in SIDE_FILES:
        side = Path(f"{path}{suffix}")
        try:
            st = os.lstat(side)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode):
            raise UnsafeStateFile(f"{side}: is a symbolic link; refusing to use {path} (remove {side})")
        check_owned(st, side)
        if st.st_mode & 0o600 != 0o600:
            raise UnsafeStateFile(
                f"{side}: SQLite's {_SIDE_NAMES[suffix]} of {path} is mode {stat.S_IMODE(st.st_mode):04o}: SQLite "
                f"cannot use it; refusing to use {path} (if it is yours: chmod 600 {side})"
            )


def connect(path: Path, fd: int) -> sqlite3.Connection:
    """SQLite connection to ``path``, confirmed to be the file ``fd`` (checked) refers to. SQLite opens by name:
    without this, the path could be swapped between our check and its open. ``mode=rw``: SQLite never creates
    the file itself."""
    mine = os.fstat(fd)
    before = _open_copies(mine)
    uri = "file:" + urllib.parse.quote(str(Path(path).absolute())) + "?mode=rw"
    db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    after = _open_copies(mine)
    same = after > before if after is not None and before is not None else _same_inode(path, mine)
    if not same:
        db.close()
        raise UnsafeStateFile(f"{path}: was replaced while being opened; refusing to use it")
    return db


def _open_copies(st: os.stat_result) -> int | None:
    """How many of this process's descriptors refer to the file ``st`` describes (None: cannot tell)."""
    try:
        fds = os.listdir("/dev/fd")
    except OSError:
        return None
    count = 0
    for name in fds:
        try:
            other = os.fstat(int(name))
        except (OSError, ValueError):
            continue
        count += (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino)
    return count


def _same_inode(path: Path, st: os.stat_result) -> bool:
    try:
        now = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)
