"""Schedules the manifest's rows: accounts concurrently (bounded), the rows of an account together.

Per account: AssumeRole once, then every row of every region through that account's clients and
rate limits; outcomes go straight to the checkpoint, so memory holds only the accounts in progress.
With a canary, a few rows (in distinct accounts) go first and must end verified before the rest start.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from fleet.accounts import Target, each_account
from fleet.calls import Calls
from fleet.checkpoint import Checkpoint
from fleet.clock import Clock, SystemClock
from fleet.credentials import AccountSession, AwsSettings, Hub
from fleet.domain import Mode, RowContext, migrate_row
from fleet.edge import EdgeChecker, EdgeSettings
from fleet.errors import StateWriteError
from fleet.limits import DEFAULT_RATE_PER_ACCOUNT, Limits
from fleet.manifest import Row, group_by
from fleet.outage import DEFAULT_PATIENCE, OutageEvent, Outages
from fleet.outcome import Outcome, Status, stamp
from fleet.preflight import DEFAULT_MIN_VALIDITY_DAYS, CertificateChecks
from fleet.retry import BackoffPolicy, Failure
from fleet.stop import Stop

CANARY_OK = frozenset({Status.VERIFIED, Status.UNCHANGED})


@dataclass(frozen=True, slots=True)
class EngineSettings:
    concurrency: int | None = None  # ceiling on calls in flight; None: the limiters and the fd limit bound them
    account_concurrency: int = 64
    rate_per_account: float = DEFAULT_RATE_PER_ACCOUNT
    policy: BackoffPolicy = field(default_factory=BackoffPolicy)
    aws: AwsSettings = field(default_factory=AwsSettings)
    mode: Mode = field(default_factory=Mode)
    min_validity_days: float = DEFAULT_MIN_VALIDITY_DAYS
    max_failures: int | None = None  # failure budget for this run: once exceeded no new write starts
    canary: int = 0  # rows (in distinct accounts) written and verified before all others
    outage_patience: float = DEFAULT_PATIENCE  # seconds an endpoint may be unreachable before the run stops
    edge: EdgeSettings = field(default_factory=EdgeSettings)  # verified = ACTIVE and the edge serves the target


class Observer:
    """Hooks for logging and progress; the default does nothing."""

    def started(self, info: dict[str, Any]) -> None:
        """Called once the hub is confirmed and the state opened, before any account is touched."""

    def row_done(self, row: Row, outcome: Outcome, seconds: float) -> None:
        """Called once per row the run attempted."""

    def retry(self, row: Row, failure: Failure, delay: float) -> None:
        """Called before each backoff sleep."""

    def outage(self, event: OutageEvent) -> None:
        """Called when an endpoint stops answering connections, and when it answers again."""


def pick_canaries(rows: Sequence[Row], count: int) -> list[Row]:
    """The first row of each of the first ``count`` accounts, in manifest order."""
    return [group[0] for group in list(group_by(rows, "account_id").values())[:count]]


async def run_rows(
    rows: Iterable[Row],
    checkpoint: Checkpoint,
    settings: EngineSettings,
    hub: Hub,
    observer: Observer | None = None,
    clock: Clock | None = None,
    stop: Stop | None = None,
) -> None:
    """Migrate every row the state does not count as done in this pass, until done or asked to stop."""
    stop = stop or Stop()
    todo = [r for r in rows if not checkpoint.is_done(r, checkpoint.stored(r.domain))]
    limits = Limits(settings.concurrency, settings.rate_per_account)
    clock = clock or SystemClock()
    observer = observer or Observer()
    outages = Outages(clock, stop, settings.outage_patience, observer.outage)
    calls = Calls(limits, settings.policy, clock, stop, outages)
    hub.outages = outages
    runner = _Runner(checkpoint, settings, observer, calls)
    if settings.canary and not settings.mode.plan:
        canaries = pick_canaries(todo, settings.canary)
        await runner.run(hub, canaries, dataclasses.replace(settings.mode, wait=True))
        if runner.state_error is not None:
            raise runner.state_error
        for row in canaries:
            outcome = checkpoint.get(row.domain)
            if outcome is None or outcome.status not in CANARY_OK:
                what = f"{outcome.status} {outcome.error_code or ''}".strip() if outcome else "not finished"
                stop.request(f"canary failed: {row.domain} ended {what}", abort=True)
                return
        picked = {r.domain for r in canaries}
        todo = [r for r in todo if r.domain not in picked]
    await runner.run(hub, todo, settings.mode)
    if runner.state_error is not None:
        raise runner.state_error


class _Runner:
    def __init__(self, checkpoint: Checkpoint, settings: EngineSettings, obs: Observer, calls: Calls) -> None:
        self.checkpoint, self.settings, self.obs, self.calls = checkpoint, settings, obs, calls
        self.clock, self.stop = calls.clock, calls.stop
        self.failures = 0
        self.state_error: StateWriteError | None = None  # the first record that could not be written
        # One checker for the run: its limiter bounds handshakes in flight over every account.
        self.edge = EdgeChecker(settings.edge, self.clock) if settings.edge.check else None

    def _cannot_record(self, exc: StateWriteError) -> None:
        """The state file cannot be written: no row may start or send anything more (a write without its
        in-flight mark would be unsafe); the run drains and reports this one error (exit 75)."""
        if self.state_error is None:
            self.state_error = exc
        self.stop.request(str(exc))

    async def run(self, hub: Hub, rows: Sequence[Row], mode: Mode) -> None:
        async def work(session: AccountSession, group: list[Row]) -> None:
            await self._regions(session, group, mode)

        await each_account(
            hub,
            group_by(rows, "account_id").values(),
            lambda group: Target(group[0].account_id, group[0].role_arn, group[0].external_id),
            work,
            self._unreachable,
            self.settings.account_concurrency,
            self.stop,
        )

    def _done(self, row: Row, outcome: Outcome, seconds: float) -> None:
        self.obs.row_done(row, outcome, seconds)
        if outcome.status is Status.FAILED:
            self.failures += 1
            budget = self.settings.max_failures
            if budget is not None and self.failures > budget:
                self.stop.request(f"failure budget exceeded: {self.failures} rows failed (budget {budget})", abort=True)

    async def _unreachable(self, rows: list[Row], failure: Failure) -> None:
        """The account's role could not be assumed: fail its rows, keep going."""
        moment = stamp(self.clock.now())
        for row in rows:
            outcome = Outcome(
                domain=row.domain,
                status=Status.FAILED,
                certificate_arn=row.certificate_arn,
                error_code=failure.code,
                error_message=f"AssumeRole: {failure.message}",
                started_at=moment,
                finished_at=moment,
            )
            try:
                await self.checkpoint.record(outcome, row)
            except StateWriteError as exc:
                self._cannot_record(exc)
                return
            self._done(row, outcome, 0.0)

    async def _regions(self, session: AccountSession, rows: list[Row], mode: Mode) -> None:
        # Certificates belong to the account: checked once per account and run.
        certificates = CertificateChecks(self.settings.min_validity_days, self.clock.now)
        acm_limits = self.calls.limits.for_region()

        async def acm() -> Any:
            return await session.client("acm", "us-east-1")

        async with anyio.create_task_group() as tg:
            for region, region_rows in group_by(rows, "region").items():
                ctx = RowContext(
                    cognito=await session.client("cognito-idp", region),
                    acm=acm,
                    calls=self.calls,
                    region_limits=self.calls.limits.for_region(),
                    acm_limits=acm_limits,
                    certificates=certificates,
                    checkpoint=self.checkpoint,
                    mode=mode,
                    edge=self.edge,
                    on_retry=self.obs.retry,
                )
                for row in region_rows:
                    tg.start_soon(self._row, ctx, row)

    async def _row(self, ctx: RowContext, row: Row) -> None:
        t0 = self.clock.monotonic()
        try:
            outcome = await migrate_row(ctx, row, self.checkpoint.stored(row.domain))
        except StateWriteError as exc:
            self._cannot_record(exc)
            return
        if outcome is not None:
            self._done(row, outcome, self.clock.monotonic() - t0)
