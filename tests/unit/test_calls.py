"""The calls layer's pure parts on virtual time: single-flight, the account loop (the write-once rule:
tests/unit/test_write_once_rule.py)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from botocore.exceptions import ClientError

from fleet.aws.accounts import Target, each_account
from fleet.aws.calls import Once
from fleet.aws.credentials import AwsSettings
from fleet.aws.retry import BackoffPolicy
from fleet.aws.stop import Stop, StopRequested

POLICY = BackoffPolicy(max_attempts=4, base=0.5, cap=2.0)


def throttled() -> ClientError:
    return ClientError(
        {"Error": {"Code": "TooManyRequestsException"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "X"
    )


async def test_once_computes_once_shares_errors_and_recomputes_after_a_stop() -> None:
    once: Once[str, int] = Once()
    calls = 0

    async def compute() -> int:
        nonlocal calls
        calls += 1
        await anyio.sleep(0.01)
        return 42

    results: list[int] = []
    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(lambda: _append(results, once.get("a", compute)))
    assert results == [42] * 5 and calls == 1

    async def fail() -> int:
        raise ValueError("no such certificate")

    for _ in range(2):
        with pytest.raises(ValueError, match="no such certificate"):
            await once.get("b", fail)

    async def stopped() -> int:
        raise StopRequested

    with pytest.raises(StopRequested):
        await once.get("c", stopped)
    assert await once.get("c", compute) == 42  # a stop is not an answer: asked again

    with anyio.move_on_after(0.001):
        await once.get("d", compute)  # cancelled mid-way
    assert await once.get("d", compute) == 42


async def _append(out: list[int], value: Any) -> None:
    out.append(await value)


class _Hub:
    """Just what the account loop uses of a hub: settings and assume()."""

    def __init__(self, denied: set[str]) -> None:
        self.settings = AwsSettings()
        self.denied = denied
        self.active = 0
        self.peak = 0

    async def assume(self, account_id: str, role_arn: str, external_id: str | None) -> Any:
        if account_id in self.denied:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "AssumeRole")
        return _Session()


class _Session:
    async def aclose(self) -> None:
        pass


async def test_account_loop_bounds_accounts_and_frees_every_slot() -> None:
    hub = _Hub(denied={"000000000000", "000000000004"})
    accounts = [f"{n:012d}" for n in range(8)]
    done: list[str] = []
    unreachable: list[tuple[str, str]] = []

    async def work(session: Any, account: str) -> None:
        hub.active += 1
        hub.peak = max(hub.peak, hub.active)
        await anyio.sleep(0.01)
        hub.active -= 1
        done.append(account)

    async def denied(account: str, failure: Any) -> None:
        unreachable.append((account, failure.code))

    for slots in (1, 3):  # one slot: a slot kept by a denied account would stop the loop for good
        done.clear()
        unreachable.clear()
        hub.peak = 0
        with anyio.fail_after(5):
            await each_account(hub, accounts, Target, work, denied, slots, Stop())  # type: ignore[arg-type]
        assert hub.peak <= slots
        assert sorted(done) == [a for a in accounts if a not in hub.denied]
        assert sorted(unreachable) == [("000000000000", "AccessDenied"), ("000000000004", "AccessDenied")]

    stop = Stop()
    stop.request("test")
    done.clear()
    await each_account(hub, accounts, Target, work, denied, 3, stop)  # type: ignore[arg-type]
    assert done == []  # stopping: no account starts
