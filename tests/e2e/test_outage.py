"""An endpoint outage belongs to the run, not to each row (fleet/aws/outage.py, docs/outages.md), whatever its shape:
refused, reset after the request, a load balancer's HTML 503, a black hole. Rows wait, spend no attempts, and the
run goes on when the endpoint answers again; past --outage-patience it stops as SIGTERM would (exit 75). The gate's
logic on virtual time: tests/unit/test_outage_gate.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from fleet.aws.outage import OutageEvent
from fleet.errors import EXIT_OK, EXIT_RESUMABLE
from fleet.migration.engine import Observer
from fleet.migration.pipeline import migrate
from fleet.sandbox.faults import OUTAGE_MODES
from fleet.sandbox.server import Sandbox

from ..conftest import Fleet
from ..files import by_domain


class Events(Observer):
    def __init__(self) -> None:
        self.outages: list[OutageEvent] = []

    def outage(self, event: OutageEvent) -> None:
        self.outages.append(event)


@contextmanager
def outage_when(box: Sandbox, ready: Callable[[], bool], seconds: float, mode: str = "refuse") -> Iterator[list[float]]:
    """Cut the sandbox (``outage_mode`` ``mode``) for ``seconds`` once ``ready()`` holds (polled): mid-run."""
    started: list[float] = []
    done = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 60
        while not done.is_set() and time.monotonic() < deadline:
            if ready():
                box.state.configure(outage_mode=mode, outage_seconds=seconds)
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


# What each sandbox mode looks like to the client (the `outage` event's shape), and the fault it counts.
SHAPES = {
    "refuse": ({"refused", "reset"}, ("outage_refused", "outage_reset")),  # new connections, kept ones
    "reset-after-request": ({"reset"}, ("outage_reset_after_request",)),
    "html-503": ({"gateway-503"}, ("outage_html_503",)),
    "blackhole": ({"timeout"}, ("outage_blackhole",)),
}


@pytest.mark.parametrize("mode", OUTAGE_MODES)
def test_an_outage_of_any_shape_mid_run_is_ridden_out_without_failing_a_row(make_fleet, mode: str) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1", "eu-west-1"), per_region=2)
    fleet.box.state.configure(propagation_delay=0.5)
    half = len(fleet.domains) // 2
    # Few attempts with short backoff: without the outage gate every row caught in the outage would fail. The
    # black hole is answered by the client's read timeout: a short one (2 s) keeps the test short.
    blackhole = mode == "blackhole"
    aws = {"read_timeout": 2.0} if blackhole else {}
    seen = Events()
    ready = lambda: sum(fleet.box.state.writes.values()) >= half  # noqa: E731
    with outage_when(fleet.box, ready, 4.0 if blackhole else 3.0, mode) as started:
        settings = fleet.settings(max_attempts=3, mode=_wait(), aws=aws)
        result = migrate(fleet.manifest, fleet.checkpoint, fleet.report, settings, seen)
    assert started, "the outage began mid-run"
    report = by_domain(result.report)
    assert result.exit_code == EXIT_OK, report
    assert {r["status"] for r in report.values()} == {"verified"}
    assert all(fleet.box.certificate_of(d.domain) == d.new_certificate_arn for d in fleet.domains)
    assert fleet.box.state.writes == {d.domain: 1 for d in fleet.domains}  # one write per domain
    shapes, faults = SHAPES[mode]
    assert sum(fleet.box.state.faults[f] for f in faults) > 0, fleet.box.state.faults  # the run met the outage
    # The outage seen by the run, for the sandbox's endpoint, named by its shape, begun and ended.
    assert seen.outages and [e.ended for e in seen.outages] == [False, True] * (len(seen.outages) // 2)
    assert {e.endpoint for e in seen.outages} == {fleet.box.endpoint}
    assert set(seen.outages[0].shape.split("+")) <= shapes, seen.outages
    assert seen.outages[1].lost >= 3 and 1.0 < seen.outages[1].seconds < 30


def test_an_outage_past_the_patience_stops_resumably_and_the_rerun_finishes(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=2)
    # From the first AssumeRole on (the hub check has passed): the other account's AssumeRole meets it too.
    with outage_when(fleet.box, lambda: bool(fleet.box.state.assume_role_calls), 6.0, "html-503"):
        t0 = time.monotonic()
        result = fleet.run(outage_patience=1.5)
    assert time.monotonic() - t0 < 6.0, "the run stopped at its patience, not at the end of the outage"
    assert result.exit_code == EXIT_RESUMABLE
    assert result.stopped is not None and "unreachable since" in result.stopped and "gateway-503" in result.stopped
    assert {r["status"] for r in by_domain(result.report).values()} == {"skipped"}
    assert sum(fleet.box.state.writes.values()) == 0
    while fleet.box.state.in_outage():
        time.sleep(0.1)
    again = fleet.run()
    assert again.exit_code == EXIT_OK
    assert fleet.box.state.writes == {d.domain: 1 for d in fleet.domains}


def test_the_outage_mode_knob_takes_the_four_shapes_only(box: Sandbox) -> None:
    with pytest.raises(ValueError, match="outage_mode"):
        box.state.configure(outage_mode="flaky")
    assert box.state.knobs.outage_mode == "refuse" and box.state.outage_now() is None


def _wait():  # type: ignore[no-untyped-def]
    from fleet.migration.row import Mode

    return Mode(wait=True, wait_interval=0.2, wait_timeout=60)
