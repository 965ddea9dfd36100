"""The S3 state's decisions without the sandbox: journal and replay, compaction, crashes between steps, fences,
and the lease lock (tests/memory_store.py plays S3's conditional writes)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import anyio
import pytest

from fleet.aws.credentials import AwsSettings
from fleet.aws.stop import Stop
from fleet.errors import StateWriteError
from fleet.migration import state_backend
from fleet.outcome import Outcome, Status
from fleet.state.base import CheckpointError
from fleet.state.lock import LockHeld
from fleet.state.s3_journal import WINDOW, encode, fence, journal_key
from fleet.state.s3_lock import Decision, Holder, LeaseLock, LockLost, decide
from fleet.state.s3_objects import Found, RaceLost, S3Location
from fleet.state.s3_state import S3Checkpoint

from ..memory_store import MemoryStore

WHERE = S3Location("fleet-state", "cognito-fleet/prod/state.sqlite")
KEY = WHERE.key


def open_state(store: MemoryStore, writer: str | None = "20261204T000000Z-run-a", **kw: object) -> S3Checkpoint:
    return S3Checkpoint(WHERE, store, writer=writer, **kw)  # type: ignore[arg-type]


def mark(state: S3Checkpoint, domain: str, status: Status = Status.IN_FLIGHT) -> None:
    outcome = Outcome(domain, status, "arn:new", previous_certificate_arn="arn:old")
    anyio.run(state.record, outcome)


def journals(store: MemoryStore) -> list[str]:
    return store.list(KEY + ".journal/")


def test_each_commit_is_one_journal_before_it_returns_and_the_next_open_replays_it() -> None:
    store = MemoryStore()
    state = open_state(store)
    state.begin(state.writer or "", "m.csv", 2)
    mark(state, "a.example.com")
    assert len(journals(store)) == 2  # begin, the mark: each durable in S3 before its caller went on
    # Killed here (no close, no snapshot): a new process finds the mark from the journal alone.
    other = open_state(store, writer="20261204T000100Z-run-b")
    stored = other.get("a.example.com")
    assert stored is not None and stored.status is Status.IN_FLIGHT
    assert [r["run_id"] for r in other.runs()] == ["20261204T000000Z-run-a"]
    other.close()


def test_compaction_uploads_one_snapshot_and_deletes_the_journals_it_holds() -> None:
    store = MemoryStore()
    state = open_state(store, compacts=True)
    state.begin(state.writer or "", "m.csv", 1)
    mark(state, "a.example.com")
    state.close()
    assert KEY in store.objects and journals(store) == []
    again = open_state(store, writer=None)
    assert again.get("a.example.com") is not None
    again.close()


def test_a_crash_between_snapshot_and_delete_replays_nothing_twice() -> None:
    store = MemoryStore()
    state = open_state(store, compacts=True)
    state.begin(state.writer or "", "m.csv", 1)
    mark(state, "a.example.com")
    store.delete = lambda keys: None  # type: ignore[method-assign]  # the snapshot lands; the deletes never do
    state.close()
    assert len(journals(store)) == 2
    reader = open_state(store, writer=None)
    assert len(list(reader.history())) == 1  # not two: the snapshot's mark says the journal is in it
    reader.close()


def test_a_snapshot_changed_since_read_is_refused_not_overwritten() -> None:
    store = MemoryStore()
    first = open_state(store, compacts=True)
    first.begin(first.writer or "", "m.csv", 1)
    first.close()
    state = open_state(store, writer="20261204T000200Z-run-c", compacts=True)
    mark(state, "a.example.com")
    store.put(KEY, b"someone else's", if_match=store.objects[KEY][1])
    with pytest.raises(RaceLost, match="nothing was overwritten"):
        state.close()
    assert store.objects[KEY][0] == b"someone else's"
    assert journals(store)  # this run's journal is kept for the next run


def test_a_fenced_writer_cannot_journal_so_its_write_is_never_sent() -> None:
    store = MemoryStore()
    state = open_state(store)
    mark(state, "a.example.com")
    # Another run took the lock over while this one was stalled, and fenced its next journal key.
    store.before_put[journal_key(KEY, state.writer or "", 2)] = json.dumps({"v": 1, "fence": "run-b"}).encode()
    with pytest.raises(StateWriteError, match="took this state's lock over"):
        mark(state, "b.example.com")
    assert not state.compacts  # the snapshot is the new holder's now: never uploaded from this copy
    with pytest.raises(StateWriteError):  # and nothing after it is journaled either
        mark(state, "c.example.com")
    assert journal_key(KEY, state.writer or "", 3) not in store.objects


def test_our_own_retried_journal_put_is_not_mistaken_for_a_fence() -> None:
    store = MemoryStore()
    state = open_state(store)
    key = journal_key(KEY, state.writer or "", 1)
    # The first PUT landed but its answer was lost; botocore's retry then meets 412 on the same bytes.
    outcome = Outcome("a.example.com", Status.IN_FLIGHT, "arn:new", previous_certificate_arn="arn:old")
    real_put = store.put

    def lost_answer(k: str, body: bytes, **kw: object) -> str:
        if k == key and k not in store.objects:
            real_put(k, body, **kw)  # type: ignore[arg-type]
        return real_put(k, body, **kw)  # type: ignore[arg-type]

    store.put = lost_answer  # type: ignore[method-assign,assignment]
    anyio.run(state.record, outcome)
    assert state.get("a.example.com") is not None


def test_a_journal_may_change_rows_but_not_attach_files_or_run_pragmas(tmp_path: Path) -> None:
    store = MemoryStore()
    open_state(store, compacts=True).close()
    evil: list[tuple[str, tuple[object, ...]]] = [(f"ATTACH DATABASE '{tmp_path}/planted.db' AS x", ())]
    store.objects[journal_key(KEY, "20261204T000300Z-evil", 1)] = (encode(evil), '"e"', 0.0)
    with pytest.raises(CheckpointError, match="cannot be replayed"):
        open_state(store, writer=None)
    assert not (tmp_path / "planted.db").exists()


def test_a_missing_state_is_refused_when_not_creating() -> None:
    with pytest.raises(CheckpointError, match="no such state"):
        open_state(MemoryStore(), writer=None, create=False)


# ---- the lock ----------------------------------------------------------------------------------


def lock_body(lease: float = 120) -> bytes:
    return Holder("run-a", "host-a", "ops", 42, lease, "2026-12-04T00:00:00Z").encode()


@pytest.mark.parametrize(
    ("found", "decision"),
    [
        (None, Decision.CREATE),
        (Found(lock_body(120), '"x"', 119), Decision.REFUSE),
        (Found(lock_body(120), '"x"', 121), Decision.TAKE_OVER),
        (Found(lock_body(5), '"x"', 6), Decision.TAKE_OVER),  # the holder's own lease rules
        (Found(b"garbage", '"x"', 60), Decision.REFUSE),
        (Found(b"garbage", '"x"', 121), Decision.REFUSE),  # unreadable: its holder cannot be fenced (unlock)
    ],
)
def test_lock_decisions(found: Found | None, decision: Decision) -> None:
    assert decide(found, 120) is decision


def test_a_second_run_is_refused_naming_the_holder_and_a_stale_lock_is_taken_over_and_fenced() -> None:
    store = MemoryStore()
    first = LeaseLock(store, KEY, "run-a", lease=30)
    first.acquire()
    with pytest.raises(LockHeld, match=r"in use by run run-a \(pid \d+ on .*lease runs out in 30s"):
        LeaseLock(store, KEY, "run-b", lease=30).acquire()
    store.time += 31  # run-a was killed: no renewal for longer than its lease
    second = LeaseLock(store, KEY, "run-b", lease=30)
    second.acquire()
    assert second.taken_from is not None and second.taken_from.run_id == "run-a"
    fence = store.objects[journal_key(KEY, "run-a", 1)][0]
    assert json.loads(fence) == {"v": 1, "fence": "run-b"}
    with pytest.raises(RaceLost):
        first.renew()  # run-a, if only stalled, finds out at its next renewal
    first.release()
    assert KEY + ".lock" in store.objects  # run-a's release leaves run-b's lock alone
    second.release()
    assert KEY + ".lock" not in store.objects


def test_renewal_keeps_the_lease_and_a_takeover_is_reported_once() -> None:
    store = MemoryStore()
    lock = LeaseLock(store, KEY, "run-a", lease=30)
    lock.acquire()
    lost: list[str] = []
    clock = {"now": 0.0, "waits": 0}

    def wait(seconds: float) -> bool:  # the injected clock: each wait moves it, and S3's, on
        clock["waits"] += 1
        clock["now"] += seconds
        store.time += seconds
        if clock["waits"] <= 3:
            assert decide(store.get(KEY + ".lock"), 30) is Decision.REFUSE  # renewed: never stale
        if clock["waits"] == 4:
            store.put(KEY + ".lock", b"taken", if_match=store.objects[KEY + ".lock"][1])  # someone took it
        return clock["waits"] > 6

    lock.keep(wait, lambda: clock["now"], lost.append)
    assert len(lost) == 1 and "taken over" in lost[0]
    assert clock["waits"] == 4  # stopped renewing at once


def test_a_compaction_during_the_run_keeps_the_latest_journal_so_a_takeover_fences_the_right_key() -> None:
    store = MemoryStore()
    state = open_state(store, compacts=True, compact_every=3)
    writer = state.writer or ""
    for n in range(5):
        mark(state, f"d{n}.example.com")
    assert KEY in store.objects  # compacted once already
    mine = [k for k in journals(store) if f"/{writer}/" in k]
    assert mine and mine[-1] == journal_key(KEY, writer, 5)
    lock = LeaseLock(store, KEY, writer, lease=30)
    lock.acquire()
    store.time += 31
    LeaseLock(store, KEY, "20261204T010000Z-run-z", lease=30).acquire()  # takes over, fences seq 6
    with pytest.raises(StateWriteError, match="took this state's lock over"):
        mark(state, "late.example.com")


def test_a_fence_covers_every_key_a_stalled_writer_may_still_land_and_replay_keeps_what_landed() -> None:
    store = MemoryStore()
    open_state(store, compacts=True).close()
    writer = "20261204T020000Z-run-s"
    body = encode([("INSERT OR REPLACE INTO meta VALUES (?, ?)", ("probe", "x"))])
    for seq in (1, 2, 3, 5):  # 4 is still in flight: PUTs land in any order
        store.objects[journal_key(KEY, writer, seq)] = (body, f'"{seq}"', 0.0)
    fence(store, KEY, writer, "run-b", window=4)
    fences = {k for k, v in store.objects.items() if b'"fence"' in v[0]}
    assert fences == {journal_key(KEY, writer, seq) for seq in (4, 6, 7, 8, 9)}
    with pytest.raises(RaceLost):  # the PUT in flight lands too late
        store.put(journal_key(KEY, writer, 4), body, if_none_match=True)
    reader = open_state(store, writer=None)
    assert reader._one("SELECT value FROM meta WHERE key = 'probe'")[0] == "x"  # 5 applied beside the fence
    reader.close()


def test_journal_puts_stay_within_the_window_and_each_caller_waits_for_its_own() -> None:
    store = SlowStore()
    state = open_state(store)
    landed_before_return: list[bool] = []

    async def one(n: int) -> None:
        await anyio.sleep(0.002 * n)  # callers arrive while earlier journals are on their way
        outcome = Outcome(f"d{n}.example.com", Status.IN_FLIGHT, "arn:new", previous_certificate_arn="arn:old")
        await state.record(outcome)
        landed_before_return.append(any(f"d{n}.example.com".encode() in v[0] for v in store.objects.values()))

    async def many() -> None:
        async with anyio.create_task_group() as tg:
            for n in range(40):
                tg.start_soon(one, n)

    anyio.run(many)
    assert all(landed_before_return) and len(landed_before_return) == 40  # durable before record() returned
    assert store.most_in_flight == WINDOW  # never more in flight than the window (one: commits meanwhile share it)
    assert 1 < len(journals(store)) < 40  # and still grouped
    state.close()


class SlowStore(MemoryStore):
    """A store whose PUTs take 20 ms (in the caller's thread, as botocore's do), counting those in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()

    def put(self, key: str, body: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(0.02)
        try:
            with self._lock:
                return super().put(key, body, if_match=if_match, if_none_match=if_none_match)
        finally:
            with self._lock:
                self.in_flight -= 1


def test_after_a_journal_that_could_not_be_written_the_local_copy_is_never_uploaded() -> None:
    store = MemoryStore()
    state = open_state(store, compacts=True)
    mark(state, "a.example.com")
    real_put = store.put

    def unavailable(key: str, body: bytes, **kw: object) -> str:
        if ".journal/" in key:
            raise StateWriteError(f"s3://fleet-state/{key}", "S3: ServiceUnavailable")
        return real_put(key, body, **kw)  # type: ignore[arg-type]

    store.put = unavailable  # type: ignore[method-assign,assignment]
    with pytest.raises(StateWriteError, match="ServiceUnavailable"):
        mark(state, "b.example.com")  # its caller never sends the write
    state.close()
    assert KEY not in store.objects  # the copy that holds b's mark (not in S3) was not uploaded
    assert len(journals(store)) == 1  # a's journal: the next run replays it


def test_only_an_in_flight_mark_waits_for_its_journal_to_land() -> None:
    store = SlowStore()
    state = open_state(store)
    seen: dict[str, bool] = {}

    async def main() -> None:
        for domain, status in (("m.example.com", Status.IN_FLIGHT), ("v.example.com", Status.VERIFIED)):
            await state.record(Outcome(domain, status, "arn:new", previous_certificate_arn="arn:old"))
            seen[domain] = any(domain.encode() in v[0] for v in store.objects.values())
            assert state.get(domain) is not None  # in the local copy either way

    anyio.run(main)
    assert seen == {"m.example.com": True, "v.example.com": False}  # the outcome's journal was still on its way
    state.close()  # waits for it
    assert any(b"v.example.com" in v[0] for v in store.objects.values())


def commands_on(store: MemoryStore, monkeypatch: pytest.MonkeyPatch, writers: list[str]) -> AwsSettings:
    """State commands (fleet.migration.state_backend.for_command) on ``store``, with these writer ids in turn."""
    monkeypatch.setattr(state_backend, "store_for", lambda where, aws: store)
    monkeypatch.setattr(state_backend, "command_writer", lambda kind: writers.pop(0))
    return AwsSettings()


def test_a_release_then_a_hold_in_the_same_second_stays_held(monkeypatch: pytest.MonkeyPatch) -> None:
    """Journals replay in writer-id order, and `...Z-hold-` sorts before `...Z-release-` (or a skewed clock):
    each command takes the lock and compacts, so its change is in the snapshot, in the order it was made."""
    store = MemoryStore()
    ids = ["20261204T000001Z-hold-aaaaaa", "20261204T000002Z-release-bbbbbb", "20261204T000002Z-hold-cccccc"]
    aws = commands_on(store, monkeypatch, ids)
    opened = S3Checkpoint(WHERE, store, "20261204T000000Z-run-a", create=True, compacts=True)
    opened.begin("20261204T000000Z-run-a", "m.csv", 0)
    opened.close()
    for reason in ("first", None, "second"):
        with state_backend.for_command(WHERE, aws, "x") as state:
            state.set_fleet_hold("ops", reason)
    assert journals(store) == [] and KEY + ".lock" not in store.objects  # all in the snapshot; lock released
    reader = open_state(store, writer=None)
    held = reader.fleet_hold()
    reader.close()
    assert held is not None and held.reason == "second"


def test_a_hold_while_a_run_holds_the_lock_is_journaled_for_that_run(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryStore()
    aws = commands_on(store, monkeypatch, ["20261204T000001Z-hold-aaaaaa"])
    run = LeaseLock(store, KEY, "20261204T000000Z-run-a")
    run.acquire()
    first = open_state(store)  # the run's first journal; no snapshot yet
    first.begin(first.writer or "", "m.csv", 0)
    first.close()
    with state_backend.for_command(WHERE, aws, "hold") as state:
        state.set_fleet_hold("ops", "incident")
    assert len(journals(store)) == 2 and KEY not in store.objects  # no snapshot written beside the run
    assert Holder.decode(store.objects[KEY + ".lock"][0]) == run.holder  # the run's lock untouched
    reader = open_state(store, writer=None)
    assert reader.fleet_hold() is not None
    reader.close()


def test_a_run_that_lost_its_lock_uploads_no_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    """Told by its keeper (lost): compaction is off. Not told yet (a takeover since the last renewal): the
    snapshot PUT first finds the lock's ETag changed. Either way the journals stay for the next holder."""
    store = MemoryStore()
    aws = commands_on(store, monkeypatch, [])
    told = state_backend.S3State(WHERE, aws, "20261204T000000Z-run-a")
    state = told.open()
    state.begin("20261204T000000Z-run-a", "m.csv", 1)
    told._losing(Stop())("taken over")
    state.close()
    assert KEY not in store.objects and len(journals(store)) == 1

    lock = LeaseLock(store, KEY, "20261204T000100Z-run-b")
    lock.acquire()
    state = open_state(store, writer="20261204T000100Z-run-b", compacts=True, confirm=lock.confirm)
    state.begin("20261204T000100Z-run-b", "m.csv", 1)
    store.time += 1000  # run-b stalls past its lease: run-c takes the lock over
    LeaseLock(store, KEY, "20261204T000200Z-run-c").acquire()
    with pytest.raises(LockLost):
        state.close()
    assert KEY not in store.objects and len(journals(store)) >= 2


def test_a_lock_create_retried_after_a_lost_answer_is_ours_and_an_unreadable_lock_is_not_taken_over() -> None:
    store = MemoryStore()
    lock = LeaseLock(store, KEY, "20261204T000000Z-run-a")
    store.before_put[KEY + ".lock"] = lock.holder.encode()  # our first PUT landed; botocore's retry gets 412
    lock.acquire()
    assert lock.etag == store.objects[KEY + ".lock"][1] and lock.taken_from is None
    lock.release()
    assert KEY + ".lock" not in store.objects
    store.objects[KEY + ".lock"] = (b"{not json", '"x"', -1000.0)  # unreadable, and long past any lease
    with pytest.raises(LockHeld, match=r"unreadable lock.*cognito-fleet unlock s3://fleet-state/"):
        LeaseLock(store, KEY, "20261204T000100Z-run-b").acquire()
    assert store.objects[KEY + ".lock"][0] == b"{not json" and journals(store) == []


def test_unlock_removes_only_the_lock_it_showed(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryStore()
    aws = commands_on(store, monkeypatch, ["20261204T000300Z-unlock-aaaaaa"])
    LeaseLock(store, KEY, "20261204T000000Z-run-a").acquire()
    shown = state_backend.holder_of(WHERE, aws)
    assert shown is not None and "run 20261204T000000Z-run-a" in shown[0]
    store.time += 1000  # while the operator reads the prompt, run-a's lease runs out and run-b takes it over
    taker = LeaseLock(store, KEY, "20261204T000100Z-run-b")
    taker.acquire()
    with pytest.raises(LockHeld, match=r"changed since it was shown.*run 20261204T000100Z-run-b"):
        state_backend.force_unlock(WHERE, aws, shown[1])
    assert store.objects[KEY + ".lock"][1] == taker.etag  # run-b's lock is still there, run-b not fenced
    assert not [k for k in journals(store) if "run-b" in k]
    current = state_backend.holder_of(WHERE, aws)
    assert current is not None
    assert "fenced" in state_backend.force_unlock(WHERE, aws, current[1]) and KEY + ".lock" not in store.objects


@pytest.mark.parametrize(
    ("report", "refusal"),
    [
        ("s3://fleet-state/r/prod.txt", "must end in .csv"),  # its run record and JSON Lines would not be found
        (f"s3://fleet-state/{KEY}.csv", "among the objects of the state"),
        (f"s3://fleet-state/{KEY}.journal/x.csv", "among the objects of the state"),
    ],
)
def test_a_record_key_that_cannot_be_uploaded_whole_is_refused_before_any_aws_call(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, report: str, refusal: str
) -> None:
    from click.testing import CliRunner

    from fleet.cli import main, s3_records

    def no_aws(*_: object) -> None:
        raise AssertionError("an AWS client was made")

    monkeypatch.setattr(s3_records, "store_for", no_aws)
    cli = ["run", str(tmp_path / "m.csv"), "--report", report, "--checkpoint", f"s3://fleet-state/{KEY}"]
    result = CliRunner().invoke(main, cli)
    assert result.exit_code == 2 and refusal in result.output, result.output


class NoDelete(MemoryStore):
    def delete(self, keys: list[str]) -> None:
        raise StateWriteError(f"s3://{self.bucket}/{keys[0]}", "S3: InternalError")


def test_exit_codes_a_lock_not_released_is_logged_and_s3_lost_after_open_is_resumable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fleet.aws.s3 import S3Unavailable

    store = NoDelete()
    aws = commands_on(store, monkeypatch, [])
    run = state_backend.S3State(WHERE, aws, "20261204T000000Z-run-a")
    with run.lock():
        pass  # a finished run: the failed DELETE of its lock does not replace its exit code
    assert store.objects.pop(KEY + ".lock")  # left to run out by its lease (removed here for the next cases)
    with pytest.raises(S3Unavailable) as before, run.lock():
        raise S3Unavailable("s3://fleet-state/k: cannot read it (AccessDenied)")
    assert before.value.exit_code == 2  # nothing opened yet
    store.objects.pop(KEY + ".lock")
    with pytest.raises(S3Unavailable) as after, run.lock():
        run.open().close()
        raise S3Unavailable("s3://fleet-state/k: cannot read it (timeout)")
    assert after.value.exit_code == 75 and "rerun to resume" in str(after.value)
