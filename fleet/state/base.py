"""What every part of the state store shares: its two connections, one lookup, one durable write, its errors."""

from __future__ import annotations

import sqlite3
from typing import Any

from fleet.errors import FleetError, StateWriteError


class CheckpointError(FleetError):
    """The state file cannot be used (not a cognito-fleet state, or written by a newer version)."""


def write_failure(path: str, exc: BaseException) -> StateWriteError | None:
    """The state file could not be written, said in one line (None: ``exc`` is not about writing the file).

    SQLite's errors by what the operator must do: SQLITE_FULL (disk, quota, or max_page_count), SQLITE_IOERR,
    SQLITE_READONLY, SQLITE_CANTOPEN (the directory was removed); an OSError from the file system likewise.
    """
    if isinstance(exc, OSError):
        return StateWriteError(path, exc.strerror or str(exc))
    if not isinstance(exc, sqlite3.OperationalError):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    causes = {
        sqlite3.SQLITE_FULL: "database or disk is full",
        sqlite3.SQLITE_IOERR: "disk I/O error",
        sqlite3.SQLITE_READONLY: "read-only: the file or its file system cannot be written",
        sqlite3.SQLITE_CANTOPEN: "cannot open it: its directory may have been removed",
    }
    if primary in causes:
        return StateWriteError(path, causes[primary])
    # Without an error code (older Pythons; some wrappers), SQLite's own messages for the same four.
    text = str(exc).lower()
    for fragment, code in (
        ("disk is full", sqlite3.SQLITE_FULL),
        ("disk i/o error", sqlite3.SQLITE_IOERR),
        ("readonly database", sqlite3.SQLITE_READONLY),
        ("unable to open database", sqlite3.SQLITE_CANTOPEN),
    ):
        if fragment in text:
            return StateWriteError(path, causes[code])
    return None


# The name 0.1 gave it; kept so that callers catching it keep working.
CheckpointMismatch = CheckpointError


class CheckpointBase:
    """The state file's connections: a writer (its transactions) and a reader (lookups that never wait for a
    commit in progress: WAL mode). The parts of ``Checkpoint`` add their jobs to it."""

    path: str
    _db: sqlite3.Connection
    _reader: sqlite3.Connection

    def _one(self, sql: str, params: tuple[object, ...] = ()) -> Any:
        return self._reader.execute(sql, params).fetchone()

    def _write(self, statements: list[tuple[str, tuple[object, ...]]]) -> None:
        """One transaction, one fsync (the group commit calls it in a thread, off the event loop); a file that
        cannot be written raises StateWriteError, and the transaction is rolled back whole."""
        try:
            with self._db:
                self._db.execute("BEGIN")
                for sql, params in statements:
                    self._db.execute(sql, params)
        except (sqlite3.Error, OSError) as exc:
            failure = write_failure(self.path, exc)
            if failure is None:
                raise
            raise failure from None
