"""Schedules the manifest's rows: accounts concurrently (bounded), the rows of an account together.

Per account: AssumeRole once, then every row of every region through that account's clients and
rate limits; outcomes go straight to the checkpoint, so memory holds only the accounts in progress.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import anyio

from fleet.checkpoint import Checkpoint
from fleet.credentials import AccountSession, AwsSettings, Hub, role_arn_for
from fleet.domain import RowContext, migrate_row
from fleet.limits import DEFAULT_RATE_PER_ACCOUNT, Limits
from fleet.manifest import Row
from fleet.outcome import Outcome, Status, utc_now
from fleet.retry import BackoffPolicy, Failure, Sleep, classify
from fleet.stop import Stop


@dataclass(frozen=True, slots=True)
class EngineSettings:
    concurrency: int = 64
    account_concurrency: int = 32
    rate_per_account: float = DEFAULT_RATE_PER_ACCOUNT
    policy: BackoffPolicy = field(default_factory=BackoffPolicy)
    aws: AwsSettings = field(default_factory=AwsSettings)


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


async def run_rows(
    rows: Iterable[Row],
    checkpoint: Checkpoint,
    settings: EngineSettings,
    observer: Observer | None = None,
    sleep: Sleep = anyio.sleep,
    clock: Callable[[], float] = time.monotonic,
    stop: Stop | None = None,
) -> None:
    """Migrate every row not yet done according to the checkpoint, until done or asked to stop."""
    obs = observer or Observer()
    stop = stop or Stop()
    done = checkpoint.done_domains()
    groups = group_by_account(r for r in rows if r.domain not in done)
    limits = Limits(settings.concurrency, settings.rate_per_account)
    account_slots = anyio.CapacityLimiter(settings.account_concurrency)

    async with Hub(settings.aws, settings.policy, sleep) as hub, anyio.create_task_group() as tg:

        async def run_account(account_id: str, account_rows: list[Row]) -> None:
            try:
                await _run_account(hub, account_id, account_rows)
            finally:
                account_slots.release_on_behalf_of(account_id)

        async def _run_account(hub: Hub, account_id: str, account_rows: list[Row]) -> None:
            if stop.requested:
                return
            first = account_rows[0]
            started, t0 = utc_now(), clock()
            try:
                session = await hub.assume(
                    account_id,
                    role_arn_for(account_id, settings.aws, first.role_arn),
                    first.external_id or settings.aws.external_id,
                )
            except Exception as exc:  # the account is unreachable: fail its rows, keep going
                failure = classify(exc)
                for row in account_rows:
                    outcome = Outcome(
                        domain=row.domain,
                        status=Status.FAILED,
                        certificate_arn=row.certificate_arn,
                        error_code=failure.code,
                        error_message=f"AssumeRole: {failure.message}",
                        started_at=started,
                        finished_at=utc_now(),
                    )
                    await checkpoint.record(outcome)
                    obs.row_done(row, outcome, clock() - t0)
                return
            try:
                await _run_regions(session, account_rows)
            finally:
                await session.aclose()

        async def _run_regions(session: AccountSession, account_rows: list[Row]) -> None:
            async with anyio.create_task_group() as rows_tg:
                for region, region_rows in _by_region(account_rows).items():
                    ctx = RowContext(
                        cognito=await session.client("cognito-idp", region),
                        limits=limits,
                        region_limits=limits.for_region(),
                        policy=settings.policy,
                        sleep=sleep,
                        checkpoint=checkpoint,
                        on_retry=obs.retry,
                    )
                    for row in region_rows:
                        rows_tg.start_soon(_run_row, ctx, row)

        async def _run_row(ctx: RowContext, row: Row) -> None:
            t0 = clock()
            outcome = await migrate_row(ctx, row, checkpoint.get(row.domain))
            if outcome is not None:
                obs.row_done(row, outcome, clock() - t0)

        for account_id, account_rows in groups.items():
            # Start an account only when a slot is free: tasks and clients stay bounded.
            await account_slots.acquire_on_behalf_of(account_id)
            if stop.requested:
                account_slots.release_on_behalf_of(account_id)
                break
            tg.start_soon(run_account, account_id, account_rows)


def _by_region(rows: list[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(row.region, []).append(row)
    return out
