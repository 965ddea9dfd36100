"""Schedules the manifest's rows: accounts concurrently (bounded), the rows of an account together.

Per account: AssumeRole once, then every row of every region through that account's clients and
rate limits; outcomes go straight to the checkpoint, so memory holds only the accounts in progress.
With a canary, a few rows (in distinct accounts) go first and must end verified before the rest start.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from fleet.checkpoint import Checkpoint
from fleet.credentials import AccountSession, AwsSettings, Hub, role_arn_for
from fleet.domain import Mode, RowContext, migrate_row
from fleet.limits import DEFAULT_RATE_PER_ACCOUNT, Limits
from fleet.manifest import Row
from fleet.outcome import Outcome, Status, utc_now
from fleet.preflight import DEFAULT_MIN_VALIDITY_DAYS, CertificateChecks
from fleet.retry import BackoffPolicy, Failure, Sleep, classify
from fleet.stop import Stop

CANARY_OK = frozenset({Status.VERIFIED, Status.UNCHANGED})


@dataclass(frozen=True, slots=True)
class EngineSettings:
    concurrency: int = 128
    account_concurrency: int = 64
    rate_per_account: float = DEFAULT_RATE_PER_ACCOUNT
    policy: BackoffPolicy = field(default_factory=BackoffPolicy)
    aws: AwsSettings = field(default_factory=AwsSettings)
    mode: Mode = field(default_factory=Mode)
    min_validity_days: float = DEFAULT_MIN_VALIDITY_DAYS
    max_failures: int | None = None  # failure budget for this run: once exceeded no new write starts
    canary: int = 0  # rows (in distinct accounts) written and verified before all others


class Observer:
    """Hooks for logging and progress; the default does nothing."""

    def row_done(self, row: Row, outcome: Outcome, seconds: float) -> None:
        """Called once per row the run attempted."""

    def retry(self, row: Row, failure: Failure, delay: float) -> None:
        """Called before each backoff sleep."""


def group_by_account(rows: Iterable[Row]) -> dict[str, list[Row]]:
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.account_id, []).append(row)
    return groups


def pick_canaries(rows: Sequence[Row], count: int) -> list[Row]:
    """The first row of each of the first ``count`` accounts, in manifest order."""
    return [group[0] for group in list(group_by_account(rows).values())[:count]]


async def run_rows(
    rows: Iterable[Row],
    checkpoint: Checkpoint,
    settings: EngineSettings,
    hub: Hub,
    observer: Observer | None = None,
    sleep: Sleep = anyio.sleep,
    clock: Callable[[], float] = time.monotonic,
    stop: Stop | None = None,
) -> None:
    """Migrate every row not yet done according to the checkpoint, until done or asked to stop."""
    stop = stop or Stop()
    done = checkpoint.done_domains()
    todo = [r for r in rows if r.domain not in done]
    runner = _Runner(checkpoint, settings, observer or Observer(), sleep, clock, stop)
    if settings.canary and not settings.mode.plan:
        canaries = pick_canaries(todo, settings.canary)
        await runner.run(hub, canaries, dataclasses.replace(settings.mode, wait=True))
        for row in canaries:
            outcome = checkpoint.get(row.domain)
            if outcome is None or outcome.status not in CANARY_OK:
                what = f"{outcome.status} {outcome.error_code or ''}".strip() if outcome else "not finished"
                stop.request(f"canary failed: {row.domain} ended {what}", abort=True)
                return
        picked = {r.domain for r in canaries}
        todo = [r for r in todo if r.domain not in picked]
    await runner.run(hub, todo, settings.mode)


class _Runner:
    def __init__(
        self,
        checkpoint: Checkpoint,
        settings: EngineSettings,
        obs: Observer,
        sleep: Sleep,
        clock: Callable[[], float],
        stop: Stop,
    ) -> None:
        self.checkpoint, self.settings, self.obs = checkpoint, settings, obs
        self.sleep, self.clock, self.stop = sleep, clock, stop
        self.limits = Limits(settings.concurrency, settings.rate_per_account)
        self.failures = 0

    async def run(self, hub: Hub, rows: Sequence[Row], mode: Mode) -> None:
        account_slots = anyio.CapacityLimiter(self.settings.account_concurrency)
        async with anyio.create_task_group() as tg:
            for account_id, account_rows in group_by_account(rows).items():
                # Start an account only when a slot is free: tasks and clients stay bounded.
                await account_slots.acquire_on_behalf_of(account_id)
                if self.stop.requested:
                    account_slots.release_on_behalf_of(account_id)
                    break
                tg.start_soon(self._account, hub, account_id, account_rows, mode, account_slots)

    def _done(self, row: Row, outcome: Outcome, seconds: float) -> None:
        self.obs.row_done(row, outcome, seconds)
        if outcome.status is Status.FAILED:
            self.failures += 1
            budget = self.settings.max_failures
            if budget is not None and self.failures > budget:
                self.stop.request(f"failure budget exceeded: {self.failures} rows failed (budget {budget})", abort=True)

    async def _account(
        self, hub: Hub, account_id: str, rows: list[Row], mode: Mode, slots: anyio.CapacityLimiter
    ) -> None:
        try:
            if self.stop.requested:
                return
            started, t0 = utc_now(), self.clock()
            try:
                session = await hub.assume(
                    account_id,
                    role_arn_for(account_id, self.settings.aws, rows[0].role_arn),
                    rows[0].external_id or self.settings.aws.external_id,
                )
            except Exception as exc:  # the account is unreachable: fail its rows, keep going
                failure = classify(exc)
                for row in rows:
                    outcome = Outcome(
                        domain=row.domain,
                        status=Status.FAILED,
                        certificate_arn=row.certificate_arn,
                        error_code=failure.code,
                        error_message=f"AssumeRole: {failure.message}",
                        started_at=started,
                        finished_at=utc_now(),
                    )
                    await self.checkpoint.record(outcome)
                    self._done(row, outcome, self.clock() - t0)
                return
            try:
                await self._regions(session, rows, mode)
            finally:
                await session.aclose()
        finally:
            slots.release_on_behalf_of(account_id)

    async def _regions(self, session: AccountSession, rows: list[Row], mode: Mode) -> None:
        certificates = CertificateChecks(self.settings.min_validity_days)  # certificates are per account
        acm_limits = self.limits.for_region()

        async def acm() -> Any:
            return await session.client("acm", "us-east-1")

        async with anyio.create_task_group() as tg:
            for region, region_rows in _by_region(rows).items():
                ctx = RowContext(
                    cognito=await session.client("cognito-idp", region),
                    acm=acm,
                    limits=self.limits,
                    region_limits=self.limits.for_region(),
                    acm_limits=acm_limits,
                    certificates=certificates,
                    policy=self.settings.policy,
                    sleep=self.sleep,
                    clock=self.clock,
                    checkpoint=self.checkpoint,
                    mode=mode,
                    on_retry=self.obs.retry,
                    stop=self.stop,
                )
                for row in region_rows:
                    tg.start_soon(self._row, ctx, row)

    async def _row(self, ctx: RowContext, row: Row) -> None:
        t0 = self.clock()
        outcome = await migrate_row(ctx, row, self.checkpoint.get(row.domain))
        if outcome is not None:
            self._done(row, outcome, self.clock() - t0)


def _by_region(rows: list[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(row.region, []).append(row)
    return out
