"""The state's directory: nobody but you (or root) may remove or rename entries there, nor own a directory above it.

Whoever may remove or rename a directory's entries controls the files in it, whatever their owner and mode: they
can delete a held state (the next run would start afresh and write the held domains) or swap in one of their own.
A directory is safe when it is owned by the current user or root, and neither group- nor world-writable, or has
the sticky bit (then only an entry's owner, the directory's owner and root may remove or rename it: /tmp). A
group-writable directory of the user's private group (group named as the user, the user's primary group, no other
members listed) counts as the user's own: that is how ``umask 002`` systems create directories.

The directory is opened without following a symlink (``O_DIRECTORY|O_NOFOLLOW``) and checked on its descriptor;
the files are then opened relative to that descriptor, so the directory checked is the one used. The directories
above it are reached through ``..`` from the same descriptor; each must be owned by the current user or root (its
owner could rename the state's directory away). Their modes are not held to the rule: a Kubernetes ``emptyDir``
mounted at /tmp is 0777 without the sticky bit, and the plan's scratch state lives in a private directory there
(docs/security.md names the residual risk). Some directories are shared on purpose (a Kubernetes
volume given to the pod through ``fsGroup`` is group-writable, with setgid): the operator trusts such a directory by
name (``--trust-state-dir DIR``, or ``COGNITO_FLEET_TRUST_STATE_DIR``, several separated by ``:``), accepting that
whoever may write there controls the state (docs/security.md).
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from fleet.errors import FleetError

TRUST_ENV = "COGNITO_FLEET_TRUST_STATE_DIR"
_trusted_by_option: tuple[Path, ...] = ()
_warned: set[str] = set()


class UnsafeStateDirectory(FleetError):
    """The state's directory (or one above it) lets another user remove or replace the state: not used."""


def trust_directories(directories: Iterable[str | Path]) -> None:
    """The directories ``--trust-state-dir`` names (each command sets them; none: only the environment's)."""
    global _trusted_by_option
    _trusted_by_option = tuple(Path(d) for d in directories)


def trusted() -> list[Path]:
    """The trusted directories: ``--trust-state-dir``'s and ``$COGNITO_FLEET_TRUST_STATE_DIR``'s."""
    from_env = [Path(p) for p in os.environ.get(TRUST_ENV, "").split(os.pathsep) if p.strip()]
    return [*_trusted_by_option, *from_env]


def _identities(directories: Iterable[Path]) -> set[tuple[int, int]]:
    found = set()
    for directory in directories:
        try:
            st = os.stat(directory)
        except OSError:
            continue  # a trusted name that does not exist trusts nothing
        found.add((st.st_dev, st.st_ino))
    return found


def open_directory(directory: Path) -> int:
    """A descriptor of ``directory`` (not a symlink), checked with every directory above it; UnsafeStateDirectory
    (exit 2, one line) otherwise."""
    name = os.path.abspath(directory)  # as given (not symlink-resolved): the name the operator knows
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(directory):
            raise UnsafeStateDirectory(
                f"{name}: the state's directory is a symbolic link; whoever controls the link controls the state: "
                f"refusing to use it (name the directory it points to: {os.path.realpath(directory)})"
            ) from None
        raise UnsafeStateDirectory(f"{name}: cannot open the state's directory: {exc.strerror or exc}") from None
    try:
        check_directories(fd, name)
    except BaseException:
        os.close(fd)
        raise
    _warn_shared(name, os.fstat(fd).st_mode)
    return fd


def check_directories(fd: int, name: str) -> None:
    """``fd`` (named ``name``) and every directory above it are safe or trusted (see the module's docstring)."""
    trust = _identities(trusted())
    names = [name, *(str(p) for p in Path(os.path.realpath(name)).parents)]
    for depth, st in enumerate(_upwards(fd)):
        where = names[depth] if depth < len(names) else f"{name} ({depth} levels up)"
        why = None if (st.st_dev, st.st_ino) in trust else unsafe(st, owner_only=depth > 0)
        if why:
            what = "the state's directory" if depth == 0 else f"a directory above the state's ({name})"
            raise UnsafeStateDirectory(
                f"{where}: {what} is {why}: another user could remove or replace the state and its lock there; "
                f"refusing to use it (keep the state in a directory only you can write to, or trust this one: "
                f"--trust-state-dir {where}; see docs/security.md)"
            )


def _upwards(fd: int) -> Iterator[os.stat_result]:
    """The stat of ``fd``'s directory, then of each directory above it, up to the root (through ``..``)."""
    current = os.dup(fd)
    try:
        while True:
            st = os.fstat(current)
            yield st
            parent = os.open("..", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=current)
            os.close(current)
            current = parent
            above = os.fstat(current)
            if (above.st_dev, above.st_ino) == (st.st_dev, st.st_ino):  # the root is its own parent
                return
    finally:
        os.close(current)


def unsafe(st: os.stat_result, owner_only: bool = False) -> str | None:
    """Why another user could remove or rename entries of the directory ``st`` describes (None: nobody can);
    ``owner_only``: only whether another user owns it."""
    me = os.geteuid()
    if st.st_uid not in (me, 0):
        return f"owned by uid {st.st_uid} (neither you, uid {me}, nor root)"
    if owner_only:
        return None
    mode = stat.S_IMODE(st.st_mode)
    if mode & stat.S_ISVTX:  # sticky: only an entry's owner, the directory's owner or root may remove or rename it
        return None
    if mode & 0o002:
        return f"writable by others (mode {mode:04o}, no sticky bit)"
    if mode & 0o020 and not _private_group(st.st_gid):
        return f"writable by group {st.st_gid} (mode {mode:04o}, no sticky bit)"
    return None


def _private_group(gid: int) -> bool:
    """``gid`` is the current user's private group (named as the user, their primary group, no other member)."""
    try:
        user = pwd.getpwuid(os.geteuid())
        group = grp.getgrgid(gid)
    except KeyError:
        return False
    return group.gr_name == user.pw_name and user.pw_gid == gid and set(group.gr_mem) <= {user.pw_name}


def warn_if_shared_directory(path: Path) -> None:
    """Warn once per directory when others may write to ``path``'s directory (``open_directory`` does too)."""
    directory = os.path.abspath(path.parent)  # as given, not symlink-resolved: the directory the operator named
    try:
        _warn_shared(directory, os.stat(directory).st_mode)
    except OSError:
        return


def _warn_shared(directory: str, mode: int) -> None:
    """Once per directory, when others may write to it (sticky, or trusted): they cannot remove the state, but
    can plant files at its names before it exists (which the tool then refuses)."""
    if directory in _warned or not mode & 0o022:
        return
    _warned.add(directory)
    from fleet.events import get_logger

    get_logger().warning(
        "state_directory_shared",
        directory=directory,
        mode=f"{stat.S_IMODE(mode):04o}",
        message="other users may write to the state's directory: keep checkpoints in a directory only you "
        "can write to (--checkpoint)",
    )
