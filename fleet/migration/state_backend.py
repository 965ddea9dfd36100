"""An ``s3://BUCKET/KEY`` state for the job and the state commands (fleet/state/s3_state.py), beside a local one.

- ``S3State``: what ``fleet.migration.state_store.state_at`` gives the job for an s3:// state: its holds, its
  lease lock (renewed from a thread of its own; a lease that cannot be renewed stops the run: no new row starts,
  exit 75), the state opened as a local copy journaling to S3.
- ``opened``: either kind of state as a ``Checkpoint``, for the state commands (history, hold, release, rollback).
- ``force_unlock`` / ``holder_of``: `cognito-fleet unlock`.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from fleet.aws.credentials import AwsSettings
from fleet.aws.s3 import S3Interrupted, S3Objects, S3Unavailable
from fleet.aws.stop import Stop
from fleet.errors import FleetError, reduce_group
from fleet.events import get_logger
from fleet.state.checkpoint import Checkpoint
from fleet.state.holds import Hold
from fleet.state.lock import LockHeld
from fleet.state.s3_journal import fence
from fleet.state.s3_lock import Holder, LeaseLock
from fleet.state.s3_objects import S3Location, is_s3
from fleet.state.s3_state import S3Checkpoint

StatePath = Path | S3Location


def location(text: str | Path) -> StatePath:
    """A state argument as given: ``s3://BUCKET/KEY`` or a local path."""
    return S3Location.parse(text) if isinstance(text, str) and is_s3(text) else Path(text)


@functools.cache
def _store(bucket: str, aws: AwsSettings) -> S3Objects:
    return S3Objects(bucket, aws, aws.state_region)


def store_for(where: S3Location, aws: AwsSettings) -> S3Objects:
    """The bucket's client (one per bucket and settings in a process)."""
    return _store(where.bucket, aws)


@contextlib.contextmanager
def opened(
    where: StatePath,
    aws: AwsSettings,
    writer: str | None = None,
    create: bool = False,
    compacts: bool = False,
    confirm: Callable[[], None] | None = None,
) -> Iterator[Checkpoint]:
    """The state, closed (an S3 state compacted when ``compacts``) on the way out. ``writer``: who writes
    (an S3 state's journal names); a local file ignores it."""
    if isinstance(where, S3Location):
        state: Checkpoint = S3Checkpoint(
            where, store_for(where, aws), writer, create=create, compacts=compacts, confirm=confirm
        )
    else:
        state = Checkpoint(where, create=create)
    failed = False
    try:
        yield state
    except BaseException:
        failed = True
        raise
    finally:
        if failed and isinstance(state, S3Checkpoint):
            state.compacts = False  # on an error the journals stay as they are; the next run compacts them
        state.close()


@contextlib.contextmanager
def for_command(where: StatePath, aws: AwsSettings, kind: str) -> Iterator[Checkpoint]:
    """The state for a command that writes (hold, release, rollback's holds). An S3 state is locked like a run
    while the lock is free, and compacted before the lock is released: the change is in the snapshot (ordered
    by its ETag chain) at once, never left to the journals' order by writer id, which follows each operator's
    clock. While a run holds the lock the command journals as before (a hold must reach a run in progress)."""
    writer = command_writer(kind)
    if not isinstance(where, S3Location):
        with opened(where, aws, writer=writer) as state:
            yield state
        return
    try:
        locking = S3State(where, aws, writer).lock()
        lease = locking.__enter__()
    except LockHeld as held:
        get_logger().info("state_lock_busy", message=f"journaled beside the run in progress ({held})")
        with opened(where, aws, writer=writer) as state:
            yield state
        return
    with contextlib.ExitStack() as stack:
        stack.push(locking.__exit__)
        yield stack.enter_context(opened(where, aws, writer=writer, compacts=True, confirm=lease.confirm))


def exists(where: StatePath, aws: AwsSettings) -> bool:
    """Whether there is a state there: a file; for S3, a snapshot or journals (one LIST, nothing downloaded)."""
    if isinstance(where, S3Location):
        keys = store_for(where, aws).list(where.key)
        return any(k == where.key or k.startswith(where.key + ".journal/") for k in keys)
    return where.exists()


class S3State:
    """An ``s3://`` state as ``fleet.migration.state_store`` uses one: read for its holds, locked for one run (the
    lease lock, renewed from a thread of its own while the run goes on), opened as a local copy that journals
    every commit to S3 and compacts when closed."""

    def __init__(self, where: S3Location, aws: AwsSettings, run_id: str) -> None:
        self.where, self.aws, self.run_id = where, aws, run_id
        self.lost = False  # the lock was lost: no snapshot from this run (its journals stay the truth)
        self._lease: LeaseLock | None = None
        self._state: S3Checkpoint | None = None

    def __str__(self) -> str:
        return str(self.where)

    def holds(self) -> tuple[str | None, dict[str, Hold]]:
        if not exists(self.where, self.aws):
            return None, {}
        with opened(self.where, self.aws) as state:
            fleet = state.fleet_hold()
            return (None if fleet is None else fleet.message(str(self.where))), state.holds()

    @contextlib.contextmanager
    def lock(self, stop: Stop | None = None) -> Iterator[LeaseLock]:
        """LockHeld (exit 3) when another run holds it; a lock lost while the run goes on ``stop``s it (exit 75)."""
        lock = LeaseLock(store_for(self.where, self.aws), self.where.key, self.run_id, self.aws.lock_lease)
        lock.acquire()
        self._lease = lock
        if lock.taken_from is not None:
            get_logger().warning(
                "state_lock_taken_over",
                lock=lock.where,
                previous=lock.taken_from.describe(),
                message=f"the lock's lease had run out: taken over from {lock.taken_from.describe()} (fenced)",
            )
        done = threading.Event()
        keeper = threading.Thread(
            target=lock.keep, args=(done.wait, time.monotonic, self._losing(stop or Stop())), daemon=True
        )
        keeper.start()
        try:
            yield lock
        except BaseException as exc:
            found = reduce_group(exc) if isinstance(exc, BaseExceptionGroup) else exc
            if isinstance(found, S3Unavailable) and not isinstance(found, S3Interrupted) and self._state is not None:
                raise S3Interrupted(f"{found}; rerun to resume") from None  # 75: the state was open, not 2
            raise
        finally:
            done.set()
            keeper.join()
            self._release(lock)

    @staticmethod
    def _release(lock: LeaseLock) -> None:
        """Delete the lock; an error here is logged, never the command's outcome (a finished run keeps its code):
        the lock then runs out by its lease and the next run takes it over."""
        try:
            lock.release()
        except FleetError as exc:
            get_logger().warning(
                "state_lock_not_released",
                lock=lock.where,
                message=f"{lock.where}: not deleted ({exc}); the next run takes it over once its lease "
                f"({lock.holder.lease_seconds:.0f}s) runs out",
            )

    def open(self) -> Checkpoint:
        """The run's state (created if new), compacted into a new snapshot when closed."""
        confirm = self._lease.confirm if self._lease is not None else None
        self._state = S3Checkpoint(
            self.where,
            store_for(self.where, self.aws),
            self.run_id,
            create=True,
            compacts=not self.lost,
            confirm=confirm,
        )
        return self._state

    def _losing(self, stop: Stop) -> Callable[[str], None]:
        def lost(why: str) -> None:
            get_logger().error("state_lock_lost", message=f"{why}: no new row starts; exit 75, rerun to resume")
            self.lost = True  # compaction off: the snapshot is the next holder's to write
            if self._state is not None:
                self._state.compacts = False
            stop.request(f"lost the state's lock: {why}")

        return lost


def command_writer(kind: str) -> str:
    """A state command's writer id (its S3 journals' name): when, what, and a random part; sorts in time."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{kind}-{secrets.token_hex(3)}"


def holder_of(where: S3Location, aws: AwsSettings) -> tuple[str, str] | None:
    """Who holds an S3 state's lock and the lock's ETag (None: nobody), for `unlock` to show, then pass back."""
    found = store_for(where, aws).get(where.key + ".lock")
    if found is None:
        return None
    holder = Holder.decode(found.body)
    who = holder.describe() if holder is not None else "an unreadable lock"
    return f"{who}, last renewed {found.age:.0f}s ago", found.etag


def force_unlock(where: StatePath, aws: AwsSettings, shown: str | None = None) -> str:
    """Fence the holder's journal, then delete the lock (`cognito-fleet unlock`). Returns what was done.
    ``shown``: the ETag of the lock the operator was shown; a lock changed since (renewed by a live holder, or
    another run's now) is refused (LockHeld), never deleted."""
    assert isinstance(where, S3Location)
    store = store_for(where, aws)
    found = store.get(where.key + ".lock")
    if found is None:
        return "it was not locked"
    if shown is not None and found.etag != shown:
        holder = Holder.decode(found.body)
        who = holder.describe() if holder is not None else "an unreadable lock"
        raise LockHeld(
            f"{where}: the lock changed since it was shown (now {who}: renewed, or another run's); nothing "
            "removed; run unlock again if its holder is dead"
        )
    holder = Holder.decode(found.body)
    fenced = ""
    if holder is not None:
        seq = fence(store, where.key, holder.run_id, command_writer("unlock"))
        fenced = f"run {holder.run_id} fenced at journal {seq}; "
    # S3's DeleteObjects takes no If-Match: the check above and this delete are one GET apart (a renewal between
    # them is not seen); the fence already stops the holder shown from writing.
    store.delete([where.key + ".lock"])
    return fenced + "the next run takes the lock"
