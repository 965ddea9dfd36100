"""One run per checkpoint: an exclusive flock on ``<checkpoint>.lock``.

The kernel drops a flock when its process dies (kill -9, OOM, reboot), so a stale lock never blocks the
next run; the file's content only names the holder for the message. A lock file this run created beside a state
that still does not exist (a no at the prompt: nothing was recorded) is removed on release, while still locked;
a run that locked a file since removed locks the new one, so two runs never hold two files of one name.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from pathlib import Path
from types import TracebackType

from fleet.errors import EXIT_LOCKED, FleetError
from fleet.outcome import utc_now
from fleet.state.ownership import open_owned


class LockHeld(FleetError):
    """Another live process holds the checkpoint's lock."""

    exit_code = EXIT_LOCKED


class CheckpointLock:
    def __init__(self, checkpoint: str | Path) -> None:
        self.path = Path(f"{checkpoint}.lock")
        self.checkpoint = Path(checkpoint)
        self._fd: int | None = None
        self._created = False

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(8):  # a file removed between our open and our flock: lock the one there now
            self._created = not self.path.exists()
            fd = self._lock()
            if _same_file(fd, self.path):
                break
            os.close(fd)
        else:
            raise LockHeld(f"checkpoint {self.checkpoint}: its lock file {self.path} keeps being replaced; run again")
        os.ftruncate(fd, 0)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": utc_now()}
        os.pwrite(fd, json.dumps(me).encode(), 0)
        self._fd = fd

    def _lock(self) -> int:
        """The lock file, flocked (LockHeld when another run holds it)."""
        # Never a symlink's target, nor a file someone else controls or reaches by a hard link (checked before the
        # truncation in acquire), nor in a directory where someone else could remove it.
        fd = open_owned(self.path, create=True)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(os.pread(fd, 4096, 0))
            os.close(fd)
            raise LockHeld(
                f"checkpoint {self.path.with_suffix('')} is in use by {holder}; "
                "wait for that run to end (or stop it) and run again"
            ) from None
        return fd

    def release(self) -> None:
        if self._fd is not None:
            if self._created and not self.checkpoint.exists() and _same_file(self._fd, self.path):
                # nothing recorded (a no at the prompt): leave nothing behind
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()  # still flocked: no other run holds it (one that opened it re-locks)
            os.close(self._fd)  # closing drops the flock; the file stays for the next run
            self._fd = None

    def __enter__(self) -> CheckpointLock:
        self.acquire()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file ``fd`` locked (a run that released it may have removed it)."""
    try:
        there = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino)


def _describe(content: bytes) -> str:
    try:
        holder = json.loads(content)
        return f"pid {holder['pid']} on {holder['host']}, started {holder['started_at']}"
    except (ValueError, KeyError, TypeError):
        return "another process"
