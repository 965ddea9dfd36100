"""One run per checkpoint: an exclusive flock on ``<checkpoint>.lock``.

The kernel drops a flock when its process dies (kill -9, OOM, reboot), so a stale lock never blocks the
next run; the file's content only names the holder for the message.
"""

from __future__ import annotations

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
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Never a symlink's target, nor a file someone else controls or reaches by a hard link (checked before the
        # truncation below), nor in a directory where someone else could remove it.
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
        os.ftruncate(fd, 0)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": utc_now()}
        os.pwrite(fd, json.dumps(me).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock; the file stays for the next run
            self._fd = None

    def __enter__(self) -> CheckpointLock:
        self.acquire()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _describe(content: bytes) -> str:
    try:
        holder = json.loads(content)
        return f"pid {holder['pid']} on {holder['host']}, started {holder['started_at']}"
    except (ValueError, KeyError, TypeError):
        return "another process"
