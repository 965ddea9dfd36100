"""An S3 state's writes to S3: a journal (or a fence found in its place); the local copy uploaded as the new
snapshot, conditionally, then the journals it holds deleted (``fleet.state.s3_state``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from fleet.errors import StateWriteError
from fleet.state import s3_journal
from fleet.state.s3_objects import ObjectStore, RaceLost, S3Location


class SnapshotCompaction:
    """The S3 side of ``S3Checkpoint``: a journal put (or found fenced), the snapshot uploaded, the journals it
    holds retired."""

    path: str
    compacts: bool
    confirm: Callable[[], None] | None  # raises unless this opener still holds the state's lock

    location: S3Location
    store: ObjectStore
    uploads: int
    _db: sqlite3.Connection
    _scratch: str
    _etag: str | None
    _replayed: list[s3_journal.Entry]
    _written: list[str]

    def _put_journal(self, key: str, body: bytes) -> None:
        try:
            self.store.put(key, body, if_none_match=True)
        except RaceLost:
            # Our own PUT retried after its answer was lost finds itself: the same bytes are ours. Anything
            # else at our next key is a fence: another run took the lock over while this one was stalled.
            found = self.store.get(key)
            if found is None or found.body != body:
                self.compacts = False  # fenced: the snapshot is the new holder's to write
                raise StateWriteError(
                    str(self.path), "another run took this state's lock over (this run's lease ran out)"
                ) from None

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
        if self.confirm is not None:
            try:
                self.confirm()  # the lock may have been lost (taken over) since the last renewal
            except Exception:
                self.compacts = False  # the journals stay the truth
                raise
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
