"""The engine and its supervisor on virtual time: waits, backoff, deadlines and the drain read the one injected
clock, so an hour's wait or a 20 s drain is tested without waiting (the sandbox still answers in real time)."""

from __future__ import annotations

import collections
import time
from collections.abc import Awaitable, Callable

import anyio

from fleet.aws.retry import BackoffPolicy
from fleet.aws.stop import Stop
from fleet.migration.engine import EngineSettings
from fleet.migration.pipeline import StopPolicy, migrate_async
from fleet.migration.row import Mode
from fleet.outcome import Status
from fleet.state.checkpoint import Checkpoint

from ..clocks import ManualClock
from ..conftest import Fleet

QUIET = StopPolicy(handle_signals=False)


async def run_on(
    clock: ManualClock,
    fleet: Fleet,
    settings: EngineSettings,
    policy: StopPolicy = QUIET,
    driver: Callable[[], Awaitable[None]] | None = None,
) -> tuple[collections.Counter[str], Stop]:
    """`run`'s own body (``migrate_async``: hub check, lock, state, supervised engine, report) awaited on
    ``clock``, with ``driver`` running alongside; the counts, and how it stopped."""
    async with anyio.create_task_group() as tg:
        if driver is not None:
            tg.start_soon(driver)
        result = await migrate_async(
            fleet.manifest, fleet.checkpoint, fleet.report, settings, policy=policy, clock=clock
        )
        tg.cancel_scope.cancel()
    stop = Stop()
    if result.stopped:
        stop.request(result.stopped, result.aborted)
    return result.counts, stop


async def until(condition: Callable[[], bool]) -> None:
    """Wait (real time) until the sandbox or the clock reaches a state: the engine's calls run in real time."""
    with anyio.fail_after(30):
        while not condition():  # noqa: ASYNC110  (a state of another thread's sandbox: no event to wait on)
            await anyio.sleep(0.002)


def poll_schedule(first: float, timeout: float) -> list[float]:
    """The sleeps of a --wait that never sees ACTIVE: x1.5 up to 60 s, the last cut at the deadline."""
    out, interval, left = [], first, timeout
    while left > 0:
        out.append(min(interval, left))
        left -= out[-1]
        interval = min(interval * 1.5, 60.0)
    return out


async def test_wait_timeout_passes_on_virtual_time(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    fleet.box.state.configure(propagation_delay=10_000)  # real seconds: the domain stays UPDATING
    clock, started = ManualClock(), time.monotonic()
    # Polls go through the real-time rate limiters (5/s per pool): ten virtual minutes, ~15 real polls.
    settings = fleet.settings(mode=Mode(wait=True, wait_timeout=600, wait_interval=15))
    counts, _ = await run_on(clock, fleet, settings, driver=clock.autojump)
    assert counts == {"pending": 1}
    expected = poll_schedule(15, 600)
    assert clock.slept == expected and abs(clock.elapsed - 600) < 1e-6
    assert fleet.box.state.calls["DescribeUserPoolDomain"] == 1 + len(expected)  # one describe per poll
    assert time.monotonic() - started < 30


async def test_canary_waits_on_virtual_time_then_the_rest_run(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=3, regions=("us-east-1",), per_region=1)
    fleet.box.state.configure(propagation_delay=0.3)
    clock = ManualClock()
    settings = fleet.settings(canary=1, mode=Mode(wait_interval=15))
    counts, stop = await run_on(clock, fleet, settings, driver=clock.autojump)
    assert counts == {"verified": 1, "pending": 2} and not stop.requested
    assert clock.slept[0] == 15 and clock.elapsed >= 15  # the canary's polls slept on the virtual clock
    events = [d for op, d in fleet.box.state.events if op == "UpdateUserPoolDomain"]
    assert events[0] == fleet.domains[0].domain


async def test_failure_budget_with_backoff_on_virtual_time(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=3, regions=("us-east-1",), per_region=2)
    # Every write lost before it is applied: each is described, then sent again after its backoff, until the
    # attempts are spent; the rows fail after a write, which the budget counts.
    fleet.box.state.configure(write_loss_before_rate=1.0)
    clock = ManualClock()
    policy = BackoffPolicy(max_attempts=4, base=0.5, cap=20.0)
    settings = fleet.settings(max_failures=0, account_concurrency=1)
    settings = EngineSettings(**{**{f: getattr(settings, f) for f in settings.__slots__}, "policy": policy})
    started = time.monotonic()
    counts, stop = await run_on(clock, fleet, settings, driver=clock.autojump)
    assert stop.aborted and "failure budget exceeded" in (stop.reason or "")
    assert counts["failed"] >= 1 and counts["failed"] + counts["skipped"] == 6 and counts["skipped"] >= 4
    backoff = [s for s in clock.slept if s > 0]
    assert backoff and all(s <= 20.0 for s in backoff)  # full jitter under the cap, on the virtual clock
    assert time.monotonic() - started < 30


async def test_drain_lets_calls_in_flight_finish_until_it_expires(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=2)
    fleet.box.state.configure(latency=0.4)  # real time: each Cognito call is in flight for 0.4 s
    clock = ManualClock()
    state = fleet.box.state

    async def deadline_while_writes_are_in_flight() -> None:
        await until(lambda: state.calls["UpdateUserPoolDomain"] >= 1)  # a write reached the sandbox, no answer yet
        clock.advance(100)  # --max-runtime 100: stop starting rows and calls; the drain (20 s) begins
        await anyio.sleep(0.05)
        assert clock.sleeping == 1  # the drain, waiting on the virtual clock; the calls go on in real time

    policy = StopPolicy(drain_seconds=20, max_runtime=100, handle_signals=False)
    counts, stop = await run_on(clock, fleet, fleet.settings(), policy, deadline_while_writes_are_in_flight)
    assert stop.reason == "max-runtime 100s" and not stop.aborted
    written = set(state.writes)
    assert written and counts["pending"] == len(written)  # every write sent before the stop was answered
    assert counts["pending"] + counts["skipped"] == 4 and clock.elapsed == 100  # the drain never expired

    # Now the drain expires while writes are in flight: they are cut, and stay in flight for the next run.
    fleet.checkpoint.unlink()
    for d in fleet.domains:
        fleet.box.set_domain_certificate(d.domain, d.old_certificate_arn)
    state.reset_counters()
    clock = ManualClock()

    async def drain_expires() -> None:
        await until(lambda: state.calls["UpdateUserPoolDomain"] >= 1)
        clock.advance(100)
        await until(lambda: clock.sleeping >= 1)  # the drain has begun its 20 s on the virtual clock
        clock.advance(20)

    counts, stop = await run_on(clock, fleet, fleet.settings(), policy, drain_expires)
    assert counts == {"skipped": 4}
    checkpoint = Checkpoint(fleet.checkpoint)
    try:
        in_flight = {
            d.domain for d in fleet.domains if (o := checkpoint.get(d.domain)) and o.status is Status.IN_FLIGHT
        }
    finally:
        checkpoint.close()
    assert in_flight  # cut mid-write: the next run describes these before writing
    # The sandbox still applies the cut writes (the client gave up, the server did not), as AWS would.
    await until(lambda: sum(state.writes.values()) == state.calls["UpdateUserPoolDomain"])
    state.configure(latency=0.0)
    counts, _ = await run_on(ManualClock(), fleet, fleet.settings())  # the next run
    assert counts["pending"] + counts["verified"] == 4 and set(state.writes.values()) == {1}
    assert all(
        state.events.index(("DescribeUserPoolDomain", d)) < state.events.index(("UpdateUserPoolDomain", d))
        for d in in_flight
    )  # described before it was written again (it was not: writes stay 1)


async def test_plan_is_awaited_like_run_on_the_same_clock(make_fleet, tmp_path) -> None:
    # plan is the one job too (plan_async): awaitable, on the injected clock; the plan file is dated by it.
    from fleet.migration.pipeline import plan_async
    from fleet.records.plan_file import read_plan

    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    clock = ManualClock()
    clock.advance(3600)
    out = tmp_path / "plan.json"
    result = await plan_async(fleet.manifest, tmp_path / "plan.csv", fleet.settings(), clock=clock, out=out)
    assert result.counts == {"planned": 2} and result.plan_out == out and not fleet.box.state.writes
    assert abs((read_plan(out).made_at - clock.now()).total_seconds()) < 0.01  # an hour ahead of the wall clock
