"""The state kept in S3: a SQLite snapshot at ``KEY`` plus a journal of group commits, worked on as a local copy.

Opening downloads the snapshot into a private temporary directory (0700) and replays the journals it lacks
(``s3_journal``). Every transaction of the local copy (each group commit of the run's rows, ``begin``/``finish``,
holds) is also written as ONE journal object: the caller (the row about to send its write to Cognito) returns only
once that object is in S3, as it returns only after the fsync of a local state. Group commits are pipelined
(``s3_window``): a batch is applied locally at once, and its journal sent while the next batch gathers.
``compact`` uploads the local copy as the new snapshot, conditional on the ETag last read (``If-Match``; a new
state with ``If-None-Match: *``), then deletes the journals the snapshot holds. A lost condition is RaceLost
(exit 3): never an overwrite. docs/s3-state.md has the table of what a crash between any two steps leaves.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path

import anyio

from fleet.errors import StateWriteError
from fleet.manifest import Row
from fleet.outcome import Outcome, Status
from fleet.state import s3_journal
from fleet.state.base import CheckpointError
from fleet.state.checkpoint import Checkpoint
from fleet.state.rows import CommitBatch
from fleet.state.s3_compact import SnapshotCompaction
from fleet.state.s3_objects import ObjectStore, S3Location
from fleet.state.s3_window import JournalWindow

# Set while an outcome that need not wait for S3 is recorded (``S3Checkpoint.record``).
_LAZY: ContextVar[bool] = ContextVar("cognito_fleet_s3_lazy_record", default=False)
COMPACT_EVERY = 1000  # journals per snapshot during a run (bounds the GETs a resume replays; once more at its end)


class S3Checkpoint(SnapshotCompaction, Checkpoint):
    """A ``Checkpoint`` whose durable copy is in S3. ``writer``: the run id (or command id) its journals are
    named by; None opens it read-only. ``compacts``: this opener holds the state's lock and uploads snapshots, each
    after ``confirm`` (the lock's ``LeaseLock.confirm``) says the lock is still its own."""

    def __init__(
        self,
        location: S3Location,
        store: ObjectStore,
        writer: str | None = None,
        create: bool = True,
        compacts: bool = False,
        compact_every: int = COMPACT_EVERY,
        confirm: Callable[[], None] | None = None,
    ) -> None:
        self.location, self.store, self.writer = location, store, writer
        self.compacts, self.compact_every, self.confirm = compacts, compact_every, confirm
        self._journaling = False
        self._seq = 0
        self._replayed: list[s3_journal.Entry] = []
        self._written: list[str] = []
        self.uploads = 0
        self._window = JournalWindow()
        self._scratch = tempfile.mkdtemp(prefix="cognito-fleet-state-")  # mode 0700: only this user reads it
        local = Path(self._scratch) / "state.sqlite"
        try:
            snapshot = store.get(location.key)
            if snapshot is None and not create and not store.list(s3_journal.prefix(location.key)):
                raise CheckpointError(f"{location}: no such state (no object at that key)")
            self._etag = snapshot.etag if snapshot is not None else None
            if snapshot is not None:
                fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(snapshot.body)
            super().__init__(local)
            # The durable copy is S3 (a commit returns once its journal is there): the local copy is a cache
            # that dies with the process, so its fsyncs would buy nothing.
            self._db.execute("PRAGMA synchronous=OFF")
            self.path = str(location)
            self._replayed = s3_journal.replay(self._db, store, location.key, self.path)
            if writer is not None:
                self._seq = s3_journal.marks(self._db).get(writer, 0)
        except BaseException:
            self._remove_scratch()
            raise
        self._journaling = writer is not None

    def _write(self, statements: list[tuple[str, tuple[object, ...]]]) -> None:
        """One local transaction whose commit waits for its journal object in S3 (the durable copy)."""
        if not self._journaling:
            if self.writer is None:
                raise CheckpointError(f"{self.path}: opened read-only")
            super()._write(statements)
            return
        assert self.writer is not None
        if self._window.broken is not None:  # a journal sent earlier was lost: nothing more is committed
            raise self._window.broken
        seq = self._seq + 1
        key = s3_journal.journal_key(self.location.key, self.writer, seq)
        body = s3_journal.encode(statements)
        try:
            with self._db:
                self._db.execute("BEGIN")
                for sql, params in [*statements, s3_journal.mark_statement(self.writer, seq)]:
                    self._db.execute(sql, params)
                self._put_journal(key, body)
        except sqlite3.Error as exc:
            raise StateWriteError(str(self.path), f"local copy: {exc}") from None
        self._seq = seq
        self._written.append(key)
        if self.compacts and len(self._written) > self.compact_every:
            self.compact()

    async def record(self, outcome: Outcome, row: Row | None = None) -> None:
        """As ``Checkpoint.record``, but only an in-flight mark waits for its journal to land in S3 (the rule:
        no write before its mark is durable). Any other outcome returns once applied to the local copy and sent:
        if its journal is lost with the process, the next run finds the mark and describes the domain again; if
        its PUT fails, the next mark (or ``finish``) fails with it and the run stops."""
        token = _LAZY.set(self._journaling and outcome.status is not Status.IN_FLIGHT)
        try:
            await super().record(outcome, row)
        finally:
            _LAZY.reset(token)

    async def _commit(self, statements: list[tuple[str, tuple[object, ...]]]) -> None:
        """The group commit (``fleet.state.rows``), pipelined: each batch is applied to the local copy at once and
        its journal sent while the next batch gathers (``s3_window``); each caller returns once its own batch's
        journal is in S3."""
        if not self._journaling:
            await super()._commit(statements)
            return
        batch = self._open
        batch.statements.extend(statements)
        if not self._committing:
            self._committing = True
            try:
                with anyio.CancelScope(shield=True):  # the waiters' statements must not be left behind
                    while self._open.statements:
                        await self._window.slot()
                        if self.compacts and len(self._written) > self.compact_every:
                            await self._window.drain()
                            await anyio.to_thread.run_sync(self.compact)
                        current, self._open = self._open, CommitBatch()
                        self._send(current)
            finally:
                self._committing = False
        if _LAZY.get():  # applied locally (or queued for the commit in progress), sent; not waited for
            if self._window.broken is not None:
                raise self._window.broken
            return
        await batch.done.wait()
        if batch.error is not None:
            raise batch.error

    def _send(self, batch: CommitBatch) -> None:
        """Apply ``batch`` to the local copy (in order) and send its journal; the batch is done when it lands."""
        assert self.writer is not None
        seq = self._seq + 1
        key = s3_journal.journal_key(self.location.key, self.writer, seq)
        try:
            if self._window.broken is not None:
                raise self._window.broken
            with self._db:
                self._db.execute("BEGIN")
                for sql, params in [*batch.statements, s3_journal.mark_statement(self.writer, seq)]:
                    self._db.execute(sql, params)
        except Exception as exc:
            batch.error = exc if not isinstance(exc, sqlite3.Error) else StateWriteError(self.path, f"local: {exc}")
            batch.done.set()
            self._window.free()
            return
        self._seq = seq
        body = s3_journal.encode(batch.statements)
        self._window.send(lambda: self._put_journal(key, body), batch, lambda: self._written.append(key))

    def close(self) -> None:
        """Compact (when this opener holds the lock and wrote or replayed anything), then drop the local copy."""
        try:
            self._window.close()  # every journal PUT answered first
            # After a failed PUT the local copy may hold commits S3 lacks: the journals stay the truth.
            intact = self._window.broken is None
            if self.compacts and intact and (self._written or self._replayed) and "_db" in self.__dict__:
                self.compact(final=True)
        finally:
            super().close()
            self._remove_scratch()

    def _remove_scratch(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)
