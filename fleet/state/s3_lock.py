"""One run per S3 state: a lock object beside it (``KEY.lock``) with a lease, kept by conditional writes.

- Taken by creating ``KEY.lock`` with ``If-None-Match: *`` (S3 answers 412 if it exists): one creator wins.
- Held by renewing it (a PUT with ``If-Match`` on the ETag it last wrote) every third of the lease, from a
  thread of its own (``keep``, on the clock it is given). A renewal that fails (412: someone took it over, or no
  answer until the lease is nearly gone) means the lock is lost: the run stops starting rows and exits 75.
- Stale when S3 says so: its age (the response's ``Date`` minus ``Last-Modified``, both S3's clock) exceeds the
  lease it names. A stale lock is taken over with ``If-Match`` on its ETag (two takers: one wins), and its holder's
  journal is fenced (``s3_journal.fence``) so a holder that was only stalled can write nothing more.
- Released by deleting it (after checking it is still ours). ``cognito-fleet unlock`` deletes it by hand.

The same design as Terraform's S3 backend (``use_lockfile``, 1.10+), plus the lease that lets the next cron run
go on by itself after a holder was killed.
"""

from __future__ import annotations

import getpass
import json
import math
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import Enum

from fleet.errors import EXIT_RESUMABLE, FleetError
from fleet.outcome import utc_now
from fleet.state.lock import LockHeld
from fleet.state.s3_journal import fence
from fleet.state.s3_objects import ObjectStore, RaceLost, StoredObject

DEFAULT_LEASE = 120.0


class LockLost(FleetError):
    """The run no longer holds its S3 lock (taken over, or could not be renewed): stopped, resumable."""

    exit_code = EXIT_RESUMABLE


@dataclass(frozen=True, slots=True)
class Holder:
    """What the lock object says: who holds it, and for how long without renewal."""

    run_id: str
    host: str
    user: str
    pid: int
    lease_seconds: float
    acquired_at: str

    def describe(self) -> str:
        return f"run {self.run_id} (pid {self.pid} on {self.host}, user {self.user}, started {self.acquired_at})"

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, body: bytes) -> Holder | None:
        try:
            doc = json.loads(body)
            return cls(
                str(doc["run_id"]),
                str(doc["host"]),
                str(doc["user"]),
                int(doc["pid"]),
                float(doc["lease_seconds"]),
                str(doc["acquired_at"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


class Decision(Enum):
    CREATE = "create"  # no lock: create one
    TAKE_OVER = "take over"  # a lock whose lease ran out: replace it (and fence its holder)
    REFUSE = "refuse"  # a live holder, or an unreadable lock (no run id to fence: cognito-fleet unlock)


def decide(found: StoredObject | None, default_lease: float) -> Decision:
    """What to do with the lock as found. An unreadable lock is never taken over: its holder's journal could not
    be fenced (``default_lease`` is kept for the callers' signature)."""
    if found is None:
        return Decision.CREATE
    holder = Holder.decode(found.body)
    if holder is None:
        return Decision.REFUSE
    return Decision.TAKE_OVER if found.age > holder.lease_seconds else Decision.REFUSE


def me(run_id: str, lease: float) -> Holder:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return Holder(run_id, socket.gethostname(), user, os.getpid(), lease, utc_now())


class LeaseLock:
    """The lock of the S3 state at ``key`` in ``store``, for run ``run_id``."""

    def __init__(self, store: ObjectStore, key: str, run_id: str, lease: float = DEFAULT_LEASE) -> None:
        self.store, self.key, self.lock_key = store, key, key + ".lock"
        self.holder = me(run_id, lease)
        self.etag: str | None = None
        self.taken_from: Holder | None = None  # the stale holder this run took over from (fenced)
        self.where = f"s3://{store.bucket}/{self.lock_key}"
        self._mutex = threading.Lock()  # a renewal (keeper thread) and a confirmation (compaction) one at a time

    def acquire(self) -> None:
        """Take the lock, or LockHeld (exit 3) naming its live holder. A race with another taker is lost as a
        refusal too, naming whoever won."""
        for _ in range(3):
            found = self.store.get(self.lock_key)
            decision = decide(found, self.holder.lease_seconds)
            if decision is Decision.REFUSE:
                assert found is not None
                raise LockHeld(self._held_message(found))
            assert decision is Decision.CREATE or found is not None
            self.taken_from = Holder.decode(found.body) if found is not None else None
            try:
                if found is None:
                    self.etag = self.store.put(self.lock_key, self.holder.encode(), if_none_match=True)
                else:
                    self.etag = self.store.put(self.lock_key, self.holder.encode(), if_match=found.etag)
            except RaceLost:
                # Our own PUT, retried by botocore after its answer was lost, meets itself (412): a lock whose
                # body is ours is ours. Otherwise someone else created or took it meanwhile: look again.
                mine = self.store.get(self.lock_key)
                if mine is None or mine.body != self.holder.encode():
                    self.taken_from = None
                    continue
                self.etag = mine.etag
            if self.taken_from is not None:
                # The stale holder may only be stalled: nothing it journals from now on is accepted.
                fence(self.store, self.key, self.taken_from.run_id, self.holder.run_id)
            return
        raise LockHeld(f"{self.where}: the lock changed hands three times while this run tried to take it; run again")

    def _held_message(self, found: StoredObject) -> str:
        holder = Holder.decode(found.body)
        if holder is None:
            return (
                f"state s3://{self.store.bucket}/{self.key} is locked by an unreadable lock (not taken over: its "
                f"holder cannot be fenced); if no run holds it: cognito-fleet unlock s3://{self.store.bucket}/{self.key}"
            )
        left = max(0, math.ceil(holder.lease_seconds - found.age))
        who = holder.describe()
        return (
            f"state s3://{self.store.bucket}/{self.key} is in use by {who}; its lease runs out in {left}s unless "
            f"renewed; wait for that run to end (if its holder is dead: cognito-fleet unlock "
            f"s3://{self.store.bucket}/{self.key})"
        )

    def renew(self) -> None:
        """Renew the lease (If-Match on our ETag); RaceLost when someone else holds it now."""
        with self._mutex:
            assert self.etag is not None
            self.etag = self.store.put(self.lock_key, self.holder.encode(), if_match=self.etag)

    def confirm(self) -> None:
        """LockLost unless the lock in S3 is still the one this run last wrote (its ETag): a snapshot is uploaded
        only by the lock's holder; a run that lost it leaves its journals to the next one."""
        with self._mutex:
            found = self.store.get(self.lock_key)
            if self.etag is None or found is None or found.etag != self.etag:
                raise LockLost(f"{self.where}: no longer this run's lock; its snapshot is left to the next run")

    def release(self) -> None:
        """Delete the lock if it is still ours (a lock taken over since is the new holder's)."""
        if self.etag is None:
            return
        found = self.store.get(self.lock_key)
        if found is not None and found.etag == self.etag:
            self.store.delete([self.lock_key])
        self.etag = None

    def keep(self, wait: Callable[[float], bool], now: Callable[[], float], lost: Callable[[str], None]) -> None:
        """Renew every third of the lease until ``wait`` (a sleep that returns True when the run is over) says so.
        A renewal refused (412) loses the lock at once; failing ones are retried until half the lease has gone
        without a renewal. ``lost`` is told why, once. Runs in a thread of its own, on the clock it is given."""
        lease = self.holder.lease_seconds
        renewed = now()
        while not wait(lease / 3 if now() - renewed < lease / 3 else lease / 12):
            try:
                self.renew()
                renewed = now()
            except RaceLost:
                lost(f"{self.where}: the lock was taken over by another run (this run's lease ran out)")
                return
            except Exception as exc:  # an unreachable S3 is retried until the lease is at risk
                if now() - renewed >= lease / 2:
                    lost(f"{self.where}: the lock could not be renewed for {now() - renewed:.0f}s ({exc})")
                    return
