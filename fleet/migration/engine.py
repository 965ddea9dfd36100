"""Schedules the manifest's rows: accounts concurrently (bounded), the rows of an account together.

Per account: AssumeRole once, then every row of every region through that account's clients and
rate limits; outcomes go straight to the checkpoint, so memory holds only the accounts in progress.
With a canary, a few rows (in distinct accounts) go first and must end verified before the rest start; rows that
fail before any write never block the fleet (they neither are canaries nor spend the failure budget).
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from fleet.aws.accounts import Target, each_account
from fleet.aws.calls import Calls
from fleet.aws.credentials import AccountSession, AwsSettings, Hub
from fleet.aws.edge import EdgeChecker, EdgeSettings
from fleet.aws.limits import DEFAULT_RATE_PER_ACCOUNT
from fleet.aws.outage import DEFAULT_PATIENCE, OutageEvent
from fleet.aws.retry import BackoffPolicy, Failure
from fleet.aws.runtime import Runtime, aws_runtime
from fleet.clock import Clock
from fleet.errors import StateWriteError
from fleet.manifest import Row, group_by
from fleet.migration.canary import run_canaries
from fleet.migration.certificates import DEFAULT_MIN_VALIDITY_DAYS, CertificateChecks
from fleet.migration.row import Mode, RowContext, migrate_row
from fleet.outcome import Outcome, Status, stamp
from fleet.records.plan_file import Approved
from fleet.state.checkpoint import Checkpoint
from fleet.state.holds import Hold


@dataclass(frozen=True, slots=True)
class SettingsFile:
    """The settings file a command read (fleet/cli/settings.py): its path, SHA-256 and the options it set."""

    path: str
    sha256: str
    options: tuple[str, ...]

    def facts(self) -> dict[str, object]:
        return {"path": self.path, "sha256": self.sha256, "options": list(self.options)}


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
    approved: Approved | None = None  # run --plan: the plan applied (fleet/records/plan_file.py)
    change_ref: str | None = None  # --change-ref: the change ticket this run carries out (the records name it)
    settings_file: SettingsFile | None = None  # the settings file that set some options (recorded, not used)
    # Also describe the certificate each domain is on when it ends (metrics: its expiry); one call per certificate.
    expiry: bool = False


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

    def note(self, name: str, level: str, fields: dict[str, Any]) -> None:
        """The run's own news (``canary_passed``, ``budget_exceeded``, ``signal``): one event each."""


@dataclass(slots=True)
class Tally:
    """What a run's summary needs beyond the report: its failures by kind and code, and what the canary noted.

    Only failures after a write (the write failed, or the domain went FAILED, changed or stuck after it) spend the
    failure budget; failures before any write (pre-flight, describe, AssumeRole) fail their rows and nothing else.
    """

    after_write: collections.Counter[str] = field(default_factory=collections.Counter)
    before_write: collections.Counter[str] = field(default_factory=collections.Counter)
    notes: list[str] = field(default_factory=list)
    writes: int = 0  # UpdateUserPoolDomain calls of this run that succeeded (set from the state at the end)


def open_runtime(
    settings: EngineSettings,
    regions: Iterable[str] = (),
    clock: Clock | None = None,
    on_outage: Callable[[OutageEvent], None] | None = None,
) -> contextlib.AbstractAsyncContextManager[Runtime]:
    """The job's AWS runtime (``fleet.aws.runtime``) from its settings: built once, handed to everything."""
    return aws_runtime(
        settings.aws,
        settings.policy,
        regions=regions,
        concurrency=settings.concurrency,
        rate_per_account=settings.rate_per_account,
        outage_patience=settings.outage_patience,
        clock=clock,
        on_outage=on_outage,
    )


async def run_rows(
    rows: Iterable[Row],
    checkpoint: Checkpoint,
    settings: EngineSettings,
    runtime: Runtime,
    observer: Observer | None = None,
) -> Tally:
    """Migrate every row the state does not count as done in this pass, until done or ``runtime.stop`` is set.

    Rows that a rollback holds on another certificate are recorded ``held`` first, without any call."""
    hub = runtime.hub
    runner = _Runner(checkpoint, settings, observer or Observer(), runtime.calls)
    holds = checkpoint.holds()
    held = [(r, h) for r in rows if (h := holds.get(r.domain)) is not None and h.certificate_arn != r.certificate_arn]
    if held:
        async with anyio.create_task_group() as tg:  # concurrently: the records share commits
            for row, hold in held:
                tg.start_soon(runner.held, row, hold)
    todo = [
        r for r in rows if r.domain not in runner.recorded and not checkpoint.is_done(r, checkpoint.stored(r.domain))
    ]
    if settings.canary and not settings.mode.plan and runner.state_error is None:
        canaried = await run_canaries(runner, hub, todo, settings.canary)
        if runner.state_error is not None:
            raise runner.state_error
        if not canaried:
            return runner.tally
        todo = [r for r in todo if r.domain not in runner.recorded]
    if runner.state_error is None:
        await runner.run(hub, todo, settings.mode)
    if runner.state_error is not None:
        raise runner.state_error
    return runner.tally


class _Runner:
    def __init__(self, checkpoint: Checkpoint, settings: EngineSettings, obs: Observer, calls: Calls) -> None:
        self.checkpoint, self.settings, self.obs, self.calls = checkpoint, settings, obs, calls
        self.clock, self.stop = calls.clock, calls.stop
        self.tally = Tally()
        self.recorded: set[str] = set()  # domains with an outcome of this run
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
            contexts = await self._contexts(session, group, mode)
            async with anyio.create_task_group() as tg:
                for row in group:
                    tg.start_soon(self._row, contexts[row.region], row)

        await self._accounts(hub, group_by(rows, "account_id").values(), work)

    async def _accounts(
        self, hub: Hub, groups: Iterable[list[Row]], work: Callable[[AccountSession, list[Row]], Awaitable[None]]
    ) -> None:
        await each_account(
            hub,
            groups,
            lambda group: Target(group[0].account_id, group[0].role_arn, group[0].external_id),
            work,
            self._unreachable,
            self.settings.account_concurrency,
            self.stop,
        )

    def _done(self, row: Row, outcome: Outcome, seconds: float) -> None:
        self.recorded.add(row.domain)
        self.obs.row_done(row, outcome, seconds)
        if outcome.status is not Status.FAILED:
            return
        code = outcome.error_code or "unknown"
        if not outcome.after_write:
            self.tally.before_write[code] += 1
            return
        self.tally.after_write[code] += 1
        failed, budget = sum(self.tally.after_write.values()), self.settings.max_failures
        if budget is not None and failed > budget and not self.stop.requested:
            self.stop.request(f"failure budget exceeded: {failed} written rows failed (budget {budget})", abort=True)
            self.obs.note(
                "budget_exceeded",
                "error",
                {
                    "failed": failed,
                    "budget": budget,
                    "by_code": dict(self.tally.after_write),
                    "message": "no new row is started; rows in flight finish; exit 1",
                },
            )

    async def held(self, row: Row, hold: Hold) -> None:
        """A domain a rollback holds on its previous certificate: recorded ``held``, nothing called."""
        moment = stamp(self.clock.now())
        outcome = Outcome(
            domain=row.domain,
            status=Status.HELD,
            certificate_arn=row.certificate_arn,
            previous_certificate_arn=hold.certificate_arn,
            error_message=hold.message(self.checkpoint.path),
            started_at=moment,
            finished_at=moment,
        )
        await self._settled(row, outcome)

    async def _settled(self, row: Row, outcome: Outcome) -> bool:
        """Record an outcome the engine decided without calling AWS (held, AssumeRole failed); False when the
        state cannot be written (the run stops)."""
        try:
            await self.checkpoint.record(outcome, row)
        except StateWriteError as exc:
            self._cannot_record(exc)
            return False
        self._done(row, outcome, 0.0)
        return True

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
            if not await self._settled(row, outcome):
                return

    async def _contexts(self, session: AccountSession, rows: list[Row], mode: Mode) -> dict[str, RowContext]:
        """One context per region of the account's rows; certificates belong to the account: checked once per
        account and run."""
        certificates = CertificateChecks(self.settings.min_validity_days, self.clock.now)
        acm_limits = self.calls.limits.for_region()

        async def acm() -> Any:
            return await session.client("acm", "us-east-1")

        return {
            region: RowContext(
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
                approved=self.settings.approved,
                expiry=self.settings.expiry,
            )
            for region in group_by(rows, "region")
        }

    async def _row(self, ctx: RowContext, row: Row) -> Outcome | None:
        t0 = self.clock.monotonic()
        try:
            outcome = await migrate_row(ctx, row, self.checkpoint.stored(row.domain))
        except StateWriteError as exc:
            self._cannot_record(exc)
            return None
        if outcome is not None:
            self._done(row, outcome, self.clock.monotonic() - t0)
        return outcome
