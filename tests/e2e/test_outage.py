"""An endpoint outage belongs to the run, not to each row (fleet/aws/outage.py): rows wait, spend no attempts, and the
run goes on when the endpoint answers again; past --outage-patience it stops as SIGTERM would (exit 75)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anyio
import botocore.exceptions
from botocore.exceptions import ClientError

from fleet.aws.outage import OutageEvent, Outages
from fleet.aws.stop import Stop, StopRequested
from fleet.clock import SystemClock
from fleet.errors import EXIT_OK, EXIT_RESUMABLE
from fleet.migration.engine import Observer
from fleet.migration.pipeline import migrate
from fleet.sandbox.server import Sandbox

from .. import virtual_time
from ..conftest import Fleet
from ..files import by_domain


class Events(Observer):
    def __init__(self) -> None:
        self.outages: list[OutageEvent] = []

    def outage(self, event: OutageEvent) -> None:
        self.outages.append(event)


@contextmanager
def outage_when(box: Sandbox, ready: Callable[[], bool], seconds: float) -> Iterator[list[float]]:
    """Cut every connection of the sandbox for ``seconds`` once ``ready()`` holds (polled): mid-run."""
    started: list[float] = []
    done = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 60
        while not done.is_set() and time.monotonic() < deadline:
            if ready():
                box.state.configure(outage_seconds=seconds)
                started.append(time.monotonic())
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield started
    finally:
        done.set()
        thread.join(5)


def test_an_outage_mid_run_is_ridden_out_without_failing_a_row(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=3, regions=("us-east-1", "eu-west-1"), per_region=2)
    fleet.box.state.configure(propagation_delay=0.5)
    half = len(fleet.domains) // 2
    # Few attempts with short backoff: without the outage gate every row caught in a 4 s outage would fail.
    seen = Events()
    with outage_when(fleet.box, lambda: sum(fleet.box.state.writes.values()) >= half, 4.0) as started:
        result = migrate(
            fleet.manifest, fleet.checkpoint, fleet.report, fleet.settings(max_attempts=3, mode=_wait()), seen
        )
    assert started, "the outage began mid-run"
    report = by_domain(result.report)
    assert result.exit_code == EXIT_OK, report
    assert {r["status"] for r in report.values()} == {"verified"}
    assert all(fleet.box.certificate_of(d.domain) == d.new_certificate_arn for d in fleet.domains)
    assert fleet.box.state.writes == {d.domain: 1 for d in fleet.domains}  # one write per domain
    faults = fleet.box.state.faults
    assert faults["outage_refused"] > 0, faults  # the run did meet the outage
    # One outage, logged when it began and when it ended, for the sandbox's endpoint.
    assert [(e.endpoint, e.ended) for e in seen.outages] == [(fleet.box.endpoint, False), (fleet.box.endpoint, True)]
    assert 3.0 < seen.outages[1].seconds < 30


def test_an_outage_past_the_patience_stops_resumably_and_the_rerun_finishes(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=2)
    # From the first AssumeRole on (the hub check has passed): the other account's AssumeRole meets it too.
    with outage_when(fleet.box, lambda: bool(fleet.box.state.assume_role_calls), 6.0):
        t0 = time.monotonic()
        result = fleet.run(outage_patience=1.5)
    assert time.monotonic() - t0 < 6.0, "the run stopped at its patience, not at the end of the outage"
    assert result.exit_code == EXIT_RESUMABLE
    assert result.stopped is not None and "unreachable since" in result.stopped
    assert {r["status"] for r in by_domain(result.report).values()} == {"skipped"}
    assert sum(fleet.box.state.writes.values()) == 0
    while fleet.box.state.in_outage():
        time.sleep(0.1)
    again = fleet.run()
    assert again.exit_code == EXIT_OK
    assert fleet.box.state.writes == {d.domain: 1 for d in fleet.domains}


def _wait():  # type: ignore[no-untyped-def]
    from fleet.migration.row import Mode

    return Mode(wait=True, wait_interval=0.2, wait_timeout=60)


# ---- the gate's logic, on virtual time ---------------------------------------------------------------------------
class Endpoint:
    """A fake endpoint that refuses connections until ``heals_at`` (virtual seconds), counting what is sent."""

    def __init__(self, heals_at: float) -> None:
        self.heals_at, self.sends, self.in_flight, self.most_in_flight = heals_at, 0, 0, 0
        self.refused = 0

    async def send(self) -> str:
        self.sends += 1
        self.in_flight += 1
        if anyio.current_time() >= 1.0:  # once the first refusals are known (callers start over 5 s)
            self.most_in_flight = max(
                self.most_in_flight, self.in_flight if anyio.current_time() < self.heals_at else 0
            )
        try:
            await anyio.sleep(0.05)  # a connect attempt takes a while
            if anyio.current_time() < self.heals_at:
                self.refused += 1
                raise botocore.exceptions.ConnectTimeoutError(endpoint_url="https://cognito-idp.example")
            return "answer"
        finally:
            self.in_flight -= 1


def _gate(patience: float, events: list[OutageEvent]) -> tuple[Outages, Stop]:
    stop = Stop()
    return Outages(SystemClock(), stop, patience, events.append, jitter=lambda: 1.0), stop


def test_callers_wait_out_an_outage_one_probe_at_a_time() -> None:
    endpoint, events = Endpoint(heals_at=30.0), list[OutageEvent]()
    gate, stop = _gate(300.0, events)
    results: list[str] = []

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for i in range(50):

                async def caller(delay: float = i * 0.1) -> None:
                    await anyio.sleep(delay)
                    results.append(await gate.through("https://cognito-idp.example", endpoint.send))

                tg.start_soon(caller)

    _, elapsed = virtual_time.run(main())
    assert results == ["answer"] * 50 and not stop.requested
    assert 30.0 <= elapsed < 30.0 + 10.5  # back within one probe interval (capped at 10 s) of the endpoint healing
    # Once the outage is known, one probe at a time.
    assert endpoint.most_in_flight == 1
    assert endpoint.refused < 15, endpoint.refused  # probes backed off: not 50 callers x attempts
    assert [e.ended for e in events] == [False, True] and 29 < events[1].seconds < 41


def test_an_outage_longer_than_the_patience_stops_the_run() -> None:
    endpoint, events = Endpoint(heals_at=1000.0), list[OutageEvent]()
    gate, stop = _gate(20.0, events)
    stopped: list[str] = []

    async def main() -> None:
        async def caller() -> None:
            try:
                await gate.through("https://cognito-idp.example", endpoint.send)
            except StopRequested:
                stopped.append("stopped")

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(caller)

    _, elapsed = virtual_time.run(main())
    assert stopped == ["stopped"] * 10
    assert stop.reason is not None and "https://cognito-idp.example unreachable since" in stop.reason
    assert not stop.aborted  # resumable: exit 75, not a failure
    assert 20.0 <= elapsed < 35.0
    assert [e.ended for e in events] == [False]


def test_an_error_answer_ends_an_outage_and_reaches_the_caller() -> None:
    # A throttle or a refusal is an answer: the endpoint is reachable, and the caller's own retry policy decides.
    events: list[OutageEvent] = []
    gate, _stop = _gate(300.0, events)
    calls = {"n": 0}

    async def send() -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise botocore.exceptions.ConnectTimeoutError(endpoint_url="https://x")
        raise ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "slow"}}, "DescribeUserPoolDomain")

    async def main() -> str:
        try:
            return await gate.through("https://x", send)
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])

    code, _ = virtual_time.run(main())
    assert code == "TooManyRequestsException" and calls["n"] == 2
    assert [e.ended for e in events] == [False, True] and gate.down() == []


def test_the_patience_is_kept_by_the_clock_even_between_far_apart_probes() -> None:
    # Probes 20 s apart, patience 5 s: the run stops at 5 s, not at the next probe (which could even succeed and
    # hide that the outage outlasted the patience).
    endpoint = Endpoint(heals_at=1000.0)
    stop = Stop()
    gate = Outages(SystemClock(), stop, 5.0, None, backoff_base=10.0, backoff_cap=60.0, jitter=lambda: 1.0)
    stopped: list[float] = []

    async def main() -> None:
        async def caller() -> None:
            try:
                await gate.through("https://cognito-idp.example", endpoint.send)
            except StopRequested:
                stopped.append(anyio.current_time())

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(caller)

    virtual_time.run(main())
    assert len(stopped) == 3 and max(stopped) < 5.5, stopped
    assert stop.reason is not None and "--outage-patience 5s" in stop.reason
