"""After a write: the domain settles. Verified when Cognito says ACTIVE on the target and its edge serves the
target; else pending, or with --wait polled until --wait-timeout. Cognito's status and the edge are polled by one
loop (``poll``), at one growing interval towards one deadline; a domain waiting past --stuck-after since its write
fails StuckUpdating (``fleet.migration.stuck``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fleet.aws.retry import AttemptCounter
from fleet.aws.stop import StopRequested
from fleet.errors import RowFailed
from fleet.manifest import Row
from fleet.migration.row_context import RowContext, describe, look
from fleet.migration.row_table import FAILED, Refusal, current_certificate
from fleet.migration.stuck import check as check_stuck
from fleet.outcome import UNREACHED, Edge, Outcome, Status

ACTIVE = "ACTIVE"
MAX_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class Waiting:
    """Not there yet: what the domain still waits for (the stuck check's words)."""

    what: str


@dataclass(slots=True)
class Schedule:
    """One row's polls: the next interval (x1.5 up to 60 s) and the deadline (monotonic), shared by every phase."""

    interval: float
    deadline: float


async def poll(ctx: RowContext, row: Row, probe: Callable[[], Awaitable[Status | Waiting]], every: Schedule) -> Status:
    """``probe`` until it says a status. Without --wait, past the deadline, or when the run stops, a domain still
    waiting is pending (or, past --stuck-after since its write, fails StuckUpdating)."""
    clock = ctx.calls.clock
    while True:
        seen = await probe()
        if isinstance(seen, Status):
            return seen
        remaining = every.deadline - clock.monotonic()
        if not ctx.mode.wait or remaining <= 0 or ctx.stopping:
            written_at = ctx.checkpoint.written_at(row.domain, row.certificate_arn)
            check_stuck(row.domain, seen.what, written_at, clock.now(), ctx.mode.stuck_after)
            return Status.PENDING
        await clock.sleep(min(every.interval, remaining))
        every.interval = min(every.interval * 1.5, MAX_INTERVAL)


def certificate_of(row: Row, description: dict[str, object]) -> str:
    """The described certificate; RowFailed when the domain cannot be updated any more."""
    current = current_certificate(row, description)
    if isinstance(current, Refusal):
        raise RowFailed(current.code, current.message)
    return current


async def settle(
    ctx: RowContext, row: Row, counter: AttemptCounter, status: str | None, outcome: Outcome, last: Outcome | None
) -> Status:
    """The state of a domain we wrote (``status``: Cognito's, as last seen): Describe until ACTIVE, then the edge."""
    every = Schedule(ctx.mode.wait_interval, ctx.calls.clock.monotonic() + ctx.mode.wait_timeout)
    first = True

    async def cognito() -> Status | Waiting:
        nonlocal first, status
        if not first:
            try:
                description = await describe(ctx, row, counter)
            except StopRequested:
                return Status.PENDING  # the write was answered; the run stops polling (the next run verifies)
            if certificate_of(row, description) != row.certificate_arn:
                raise RowFailed("CertificateChanged", f"{row.domain!r} left the target certificate while we waited")
            status = description.get("Status")
        first = False
        if status == ACTIVE:
            return await at_edge(ctx, row, counter, outcome, last, every)
        if status == FAILED:
            raise RowFailed("DomainFailed", f"Cognito reports {row.domain!r} FAILED after the certificate change")
        return Waiting("still UPDATING")

    return await poll(ctx, row, cognito, every)


async def at_edge(
    ctx: RowContext, row: Row, counter: AttemptCounter, outcome: Outcome, last: Outcome | None, every: Schedule
) -> Status:
    """Cognito says ACTIVE on the target: verified once the edge serves it. An edge still on the old (or another)
    certificate is polled with --wait until the deadline; an unreachable one (after its few tries) is not waited
    for: the row ends pending, and the next run looks again."""
    checker = ctx.edge
    if checker is None:
        outcome.edge = Edge.UNCHECKED
        return Status.VERIFIED
    if last is not None and last.status is Status.VERIFIED and last.edge == Edge.SERVED:
        outcome.edge, outcome.edge_not_after = last.edge, last.edge_not_after  # proven before: no handshake
        return Status.VERIFIED

    async def edge() -> Status | Waiting:
        try:
            seen = await look(ctx, checker, row, counter, outcome.cloudfront_domain, outcome.previous_certificate_arn)
        except StopRequested:
            return Status.PENDING
        outcome.edge, outcome.edge_not_after = seen.edge, seen.not_after
        outcome.error_code = outcome.error_message = None
        if seen.edge is Edge.SERVED:
            return Status.VERIFIED
        if seen.edge is Edge.UNREACHABLE:
            outcome.error_code, outcome.error_message = "EdgeUnreachable", UNREACHED + str(seen.reason)
            return Status.PENDING
        what = "the previous certificate" if seen.edge is Edge.OLD else "another certificate"
        outcome.error_message = f"Cognito says ACTIVE, but the edge still serves {what}"
        return Waiting(f"ACTIVE but its edge still serves {what}")

    return await poll(ctx, row, edge, every)
