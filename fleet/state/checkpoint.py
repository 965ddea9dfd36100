"""The fleet's state: one SQLite file keyed by domain, not by manifest, that every run reads and extends.

- ``outcomes``: each domain's latest outcome (for the target it was last asked for), committed as the row ends.
  A row is marked ``in_flight`` (with the certificate it had) before its write is sent, so a run killed between
  the write and its record knows, when resumed, to describe that domain before writing again.
- ``moves``: for every (domain, target) the tool moved, the certificate the domain had before the tool first
  moved it there: every later report names it as ``previous_certificate_arn``, so rollback works from any of them.
- ``history``: append-only, every record of every run (writes in flight included); ``runs``: one line per run.
- ``holds`` / ``hold_log`` / the ``fleet_hold`` meta key: domains a rollback holds on their previous certificate,
  the whole fleet held by an operator, and every hold and release (``fleet.state.holds``).
- Passes: runs resume a pass until one finishes every row; the next run starts a new pass, describes every domain
  again and converges (``fleet.migration.row``). Any manifest may run against the state; rows new to it are new work.

Schema 3 (2 plus holds: a 0.2 tool refuses it, rather than ignore a hold); a 0.1 checkpoint (fingerprint-bound, no
schema version) or a schema 2 one is upgraded in place when opened.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from types import TracebackType

from fleet.state.base import CheckpointError, CheckpointMismatch, write_failure
from fleet.state.holds import HoldsMixin
from fleet.state.ownership import check_side_files, connect, open_owned
from fleet.state.rows import CommitBatch, RowsMixin, Stored
from fleet.state.runs import CONVERGE, RESUME, RunsMixin
from fleet.state.schema import APPLICATION_ID, SCHEMA, SCHEMA_VERSION, SchemaMixin, needs_stamp

__all__ = [
    "APPLICATION_ID",
    "CONVERGE",
    "RESUME",
    "SCHEMA_VERSION",
    "Checkpoint",
    "CheckpointError",
    "CheckpointMismatch",
    "Stored",
    "write_failure",
]


class Checkpoint(SchemaMixin, RowsMixin, RunsMixin, HoldsMixin):
    """The state file: its schema (``fleet.state.schema``), the row store (``rows``), runs and history (``runs``)
    and holds (``holds``). ``begin`` a run before recording, ``finish`` it after. A context manager: closed on
    leaving the ``with`` block."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        """Open the state at ``path`` (``create``: a new one where no file exists). A file that is not a
        cognito-fleet state, or that someone else could control, is refused (FleetError, exit 2), untouched."""
        self.path = str(path)
        where = Path(self.path)
        if create:
            where.parent.mkdir(parents=True, exist_ok=True)
        check_side_files(where)
        # Kept open while the state is: SQLite's connections are checked against it, and closing a descriptor
        # of the file would drop SQLite's POSIX locks on it.
        self._fd = open_owned(where, create)
        try:
            self._db = connect(where, self._fd)
            try:
                stamp = needs_stamp(self._db, self.path, os.fstat(self._fd).st_size)
                self._db.execute("PRAGMA journal_mode=WAL")
                # FULL: an in-flight mark must survive a power cut, not only a killed process.
                self._db.execute("PRAGMA synchronous=FULL")
                if stamp:
                    self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                self._db.executescript(SCHEMA)
            except sqlite3.DatabaseError as exc:  # a full disk at open is that, not a foreign file
                check_side_files(where)  # unless SQLite failed on a side file planted meanwhile: named as such
                raise write_failure(self.path, exc) or CheckpointError(
                    f"{self.path}: not a cognito-fleet state file ({exc})"
                ) from None
            self._upgrade()
            self._add_columns()
            # Reads get a connection of their own: on the writer's, a lookup from the event loop waited for the
            # commit (and fsync) in progress in the writer thread; in WAL mode a second connection reads at once.
            self._reader = connect(where, self._fd)
            check_side_files(where)
        except BaseException:
            self.close()
            raise
        self._open = CommitBatch()
        self._committing = False
        self.run_id, self.pass_, self.mode = "", 0, RESUME

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        for name in ("_reader", "_db"):  # those opened (this also runs when opening failed half-way)
            db = self.__dict__.pop(name, None)
            if db is not None:
                db.close()
        if self._fd >= 0:
            os.close(self._fd)  # after SQLite's own: closing it earlier would drop their locks
            self._fd = -1
