"""The checkpoint's group commit: every caller returns only once its own outcome is durable."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import anyio.lowlevel

from fleet.errors import StateWriteError
from fleet.outcome import Outcome, Status
from fleet.state.checkpoint import Checkpoint


def outcome(i: int, status: Status = Status.PENDING) -> Outcome:
    return Outcome(
        domain=f"auth{i}.example.com", status=status, certificate_arn=f"arn:aws:acm:us-east-1:1:certificate/{i}"
    )


def stored(path: Path) -> dict[str, str]:
    """What another process would read from the file right now."""
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT domain, status FROM outcomes").fetchall())


async def test_concurrent_records_each_durable_when_their_call_returns(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    checkpoint = Checkpoint(path)
    returned: list[tuple[str, bool]] = []

    async def one(i: int) -> None:
        await checkpoint.record(outcome(i))
        returned.append((f"auth{i}.example.com", f"auth{i}.example.com" in stored(path)))

    async with anyio.create_task_group() as tg:
        for i in range(150):
            tg.start_soon(one, i)
    assert len(returned) == 150
    assert all(durable for _, durable in returned), [d for d, ok in returned if not ok][:5]
    assert stored(path) == {f"auth{i}.example.com": "pending" for i in range(150)}
    checkpoint.close()


async def test_later_record_of_a_domain_wins(tmp_path: Path) -> None:
    checkpoint = Checkpoint(tmp_path / "c.sqlite")
    async with anyio.create_task_group() as tg:
        tg.start_soon(checkpoint.record, outcome(1, Status.IN_FLIGHT))
    await checkpoint.record(outcome(1, Status.VERIFIED))
    got = checkpoint.get("auth1.example.com")
    assert got is not None and got.status is Status.VERIFIED
    checkpoint.close()


async def test_failed_commit_reaches_every_caller_of_its_batch(tmp_path: Path) -> None:
    checkpoint = Checkpoint(tmp_path / "c.sqlite")
    await checkpoint.record(outcome(0))
    checkpoint._db.execute("PRAGMA query_only = ON")  # every later write fails, as on a read-only disk
    errors: list[BaseException] = []

    async def one(i: int) -> None:
        try:
            await checkpoint.record(outcome(i))
        except StateWriteError as exc:  # named for the operator: which file, and why
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        for i in range(1, 21):
            tg.start_soon(one, i)
    assert len(errors) == 20
    assert all("c.sqlite" in str(e) and "read-only" in str(e) for e in errors)
    checkpoint._db.execute("PRAGMA query_only = OFF")
    assert set(stored(tmp_path / "c.sqlite")) == {"auth0.example.com"}  # nothing half-written
    await checkpoint.record(outcome(21))  # and the checkpoint still works afterwards
    assert "auth21.example.com" in stored(tmp_path / "c.sqlite")
    checkpoint.close()


async def test_cancelled_caller_does_not_strand_the_others(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    checkpoint = Checkpoint(path)
    done: list[int] = []

    async def one(i: int) -> None:
        await checkpoint.record(outcome(i))
        done.append(i)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as outer:
            async with anyio.create_task_group() as doomed:
                for i in range(10):
                    doomed.start_soon(one, i)
                await anyio.lowlevel.checkpoint()  # they queue their statements; one of them commits
                doomed.cancel_scope.cancel()
            for i in range(10, 30):
                outer.start_soon(one, i)
    assert set(range(10, 30)) <= set(done)
    assert {f"auth{i}.example.com" for i in range(10, 30)} <= set(stored(path))
    checkpoint.close()
