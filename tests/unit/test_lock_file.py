"""The state's lock file: a run that recorded nothing (a no at the prompt) leaves no lock file it created; a lock
file another run holds, one that was there before, or one beside a state is never removed."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.state.lock import CheckpointLock, LockHeld


def test_a_lock_file_created_beside_no_state_is_removed_on_release(tmp_path: Path) -> None:
    state = tmp_path / "s.sqlite"
    with CheckpointLock(state) as lock:
        assert lock.path.exists()
    assert not lock.path.exists() and not state.exists()


def test_a_lock_file_beside_a_state_recorded_meanwhile_stays(tmp_path: Path) -> None:
    state = tmp_path / "s.sqlite"
    with CheckpointLock(state) as lock:
        state.write_bytes(b"")  # the run opened its state: the lock file belongs beside it
    assert lock.path.exists()


def test_a_lock_file_that_was_there_before_stays(tmp_path: Path) -> None:
    state = tmp_path / "s.sqlite"
    with CheckpointLock(state):
        state.write_bytes(b"")
    state.unlink()  # the lock file of an earlier run, its state gone: not this run's to remove
    with CheckpointLock(state) as lock:
        pass
    assert lock.path.exists()


def test_a_lock_another_run_holds_is_never_removed(tmp_path: Path) -> None:
    state = tmp_path / "s.sqlite"
    with CheckpointLock(state) as first:
        with pytest.raises(LockHeld):
            CheckpointLock(state).acquire()
        assert first.path.exists()  # the refused run created nothing and removed nothing
        with pytest.raises(LockHeld):  # and the lock is still held
            CheckpointLock(state).acquire()
    assert not first.path.exists()  # the first run created it and recorded nothing


def test_a_run_that_locked_a_file_since_removed_locks_the_new_one(tmp_path: Path) -> None:
    state = tmp_path / "s.sqlite"
    lock = CheckpointLock(state)
    locked = lock._lock  # the moment between opening the file and holding its lock

    def removed_meanwhile() -> int:
        fd = locked()
        if not hasattr(removed_meanwhile, "done"):
            removed_meanwhile.done = True  # type: ignore[attr-defined]
            lock.path.unlink()  # the run that held it released it (a no at its prompt)
        return fd

    lock._lock = removed_meanwhile  # type: ignore[method-assign]
    lock.acquire()
    try:
        assert lock.path.exists()
        with pytest.raises(LockHeld):  # the file there now is the one locked
            CheckpointLock(state).acquire()
    finally:
        lock.release()
