"""What one row works with: its context (clients, the run's calls layer, limits, certificate checks, the state)
and the calls it makes through it (Describe, DescribeCertificate, the edge check)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from fleet.aws.calls import Calls
from fleet.aws.edge import EdgeChecker, NotSeen, Seen, compare, is_certificate
from fleet.aws.limits import RegionLimits
from fleet.aws.retry import AttemptCounter, Failure
from fleet.aws.stop import StopRequested
from fleet.manifest import Row
from fleet.migration.certificates import CertificateChecks
from fleet.migration.stuck import DEFAULT_STUCK_AFTER
from fleet.outcome import Edge, stamp
from fleet.records.plan_file import Approved
from fleet.state.checkpoint import Checkpoint


@dataclass(frozen=True, slots=True)
class Mode:
    plan: bool = False  # describe and check only: rows end planned / unchanged / failed
    wait: bool = False  # after a write, poll until ACTIVE on the new certificate
    wait_timeout: float = 3600.0
    wait_interval: float = 15.0  # first poll interval; grows x1.5 up to 60 s
    stuck_after: float = DEFAULT_STUCK_AFTER  # a written domain still UPDATING this long after its write fails


@dataclass(slots=True)
class RowContext:
    """What one row needs: its clients, the run's calls layer, its limits, certificate checks, the checkpoint."""

    cognito: Any
    acm: Callable[[], Awaitable[Any]]  # the account's us-east-1 ACM client, created on first use
    calls: Calls
    region_limits: RegionLimits
    acm_limits: RegionLimits
    certificates: CertificateChecks
    checkpoint: Checkpoint
    mode: Mode = field(default_factory=Mode)
    edge: EdgeChecker | None = None  # None: --no-edge-check (verified is Cognito's word)
    on_retry: Callable[[Row, Failure, float], None] | None = None
    approved: Approved | None = None  # run --plan: only the plan's writes, on the certificates it saw
    expiry: bool = False  # also find the NotAfter of the certificate the domain ends on (metrics)

    @property
    def stopping(self) -> bool:
        return self.calls.stop.requested

    def now(self) -> str:
        return stamp(self.calls.clock.now())


async def call(
    ctx: RowContext,
    row: Row,
    counter: AttemptCounter,
    client: Any,
    operation: str,
    limits: RegionLimits,
    limit_key: str,
    **kwargs: Any,
) -> Any:
    """One call of this row, through the run's calls layer; its retries are reported with the row."""
    observer = ctx.on_retry

    def on_retry(failure: Failure, delay: float) -> None:
        if observer is not None:
            observer(row, failure, delay)

    return await ctx.calls.call(client, operation, limits, limit_key, counter, on_retry=on_retry, **kwargs)


async def describe(ctx: RowContext, row: Row, counter: AttemptCounter, despite_stop: bool = False) -> dict[str, Any]:
    out = await call(
        ctx,
        row,
        counter,
        ctx.cognito,
        "DescribeUserPoolDomain",
        ctx.region_limits,
        row.user_pool_id,
        despite_stop=despite_stop,
        Domain=row.domain,
    )
    return dict(out.get("DomainDescription") or {})


async def describe_with(ctx: RowContext, row: Row, counter: AttemptCounter, prefetch: bool) -> dict[str, Any]:
    """Describe the domain; with ``prefetch``, describe its target certificate at the same time (its answer, or
    its error, waits in the run's certificate checks for the pre-flight)."""
    if not prefetch:
        return await describe(ctx, row, counter)
    failed: Exception | None = None
    description: dict[str, Any] = {}
    async with anyio.create_task_group() as tg:
        tg.start_soon(ctx.certificates.fetch, row.certificate_arn, certificate_describer(ctx, row, counter))
        try:
            description = await describe(ctx, row, counter)
        except Exception as exc:  # re-raised as is, not wrapped in the task group's ExceptionGroup
            failed = exc
            tg.cancel_scope.cancel()
    if failed is not None:
        raise failed
    return description


def certificate_describer(
    ctx: RowContext, row: Row, counter: AttemptCounter, arn: str | None = None
) -> Callable[[], Awaitable[Any]]:
    certificate = arn or row.certificate_arn

    async def describe_certificate() -> dict[str, Any]:
        acm = await ctx.acm()
        result: dict[str, Any] = await call(
            ctx,
            row,
            counter,
            acm,
            "DescribeCertificate",
            ctx.acm_limits,
            certificate,
            CertificateArn=certificate,
        )
        return result

    return describe_certificate


async def look(
    ctx: RowContext,
    checker: EdgeChecker,
    row: Row,
    counter: AttemptCounter,
    cloudfront: str | None,
    previous: str | None,
) -> Seen:
    """What the domain's edge serves, compared with the row's target and with ``previous`` (described only when
    the edge does not serve the target; each certificate once per account and run)."""
    result = await checker.look(row.domain, cloudfront)
    if isinstance(result, NotSeen):
        return Seen(Edge.UNREACHABLE, reason=result.reason)
    target = await ctx.certificates.described(row.certificate_arn, certificate_describer(ctx, row, counter))
    if is_certificate(result, target.get("Certificate")):
        return Seen(Edge.SERVED, result)
    before = None
    if previous and previous != row.certificate_arn:
        describe = certificate_describer(ctx, row, counter, previous)
        try:
            before = (await ctx.certificates.described(previous, describe)).get("Certificate")
        except StopRequested:
            raise
        except Exception:  # not describable (deleted, another account): the served one is then "other"
            before = None
    return Seen(compare(result, target.get("Certificate"), before), result)
