"""Compaction of an S3 state: the local copy uploaded as the new snapshot, conditionally, then the journals it
holds deleted (``fleet.state.s3_state``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fleet.state import s3_journal
from fleet.state.s3_objects import ObjectStore, RaceLost, S3Location


class SnapshotCompaction:
    """The snapshot's side of ``S3Checkpoint``: what it reads and uploads, and the journals it retires."""

    location: S3Location
    store: ObjectStore
    uploads: int
    _db: sqlite3.Connection
    _scratch: str
    _etag: str | None
    _replayed: list[s3_journal.Entry]
    _written: list[str]

    def _lost(self) -> RaceLost:
        return RaceLost(
            f"{self.location}: the snapshot was changed by someone else since this run read it; nothing was "
            "overwritten (this run's journals are kept and replayed by the next run); run again"
        )

    def compact(self, final: bool = False) -> None:
        """Upload the local copy as the snapshot (conditional on the ETag last read or written), then delete
        the journals it holds. RaceLost when the snapshot changed meanwhile: nothing is overwritten.

        Until the ``final`` one, this writer's latest journal is kept: a run that takes the lock over finds this
        writer's last sequence number by listing, and fences the next one."""
        copy = Path(self._scratch) / "upload.sqlite"
        copy.unlink(missing_ok=True)
        self._db.execute("VACUUM INTO ?", (str(copy),))  # a consistent copy, WAL folded in
        body = copy.read_bytes()
        copy.unlink()
        try:
            if self._etag is None:  # a new state: only if nobody created one meanwhile
                self._etag = self.store.put(self.location.key, body, if_none_match=True)
            else:
                self._etag = self.store.put(self.location.key, body, if_match=self._etag)
        except RaceLost:
            found = self.store.get(self.location.key)  # our own PUT, retried after its answer was lost?
            if found is None or found.body != body:
                raise self._lost() from None
            self._etag = found.etag
        self.uploads += 1

        # Fences stay: a stalled writer must keep finding its next key taken.
        kept = [] if final else sorted(self._written)[-1:]  # keys sort by sequence number
        done = [e.key for e in self._replayed if not e.fence] + [k for k in self._written if k not in kept]
        if done:
            self.store.delete(done)
        self._replayed, self._written = [], kept
