"""One row's work against Cognito and ACM: describe, decide, check the certificate, write, verify, record.

The write changes only the certificate: the current ManagedLoginVersion read from Describe is sent
back with it (SecurityPolicy is not modelled by the pinned botocore, so Cognito keeps its own value).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from fleet.aws.calls import Calls
from fleet.aws.edge import EdgeChecker, Seen, compare, is_certificate
from fleet.aws.limits import RegionLimits
from fleet.aws.retry import AttemptCounter, Failure, classify
from fleet.aws.stop import StopRequested
from fleet.aws.write_once import WriteOnce
from fleet.errors import RowFailed, StateWriteError
from fleet.manifest import Row
from fleet.migration.certificates import CertificateChecks
from fleet.migration.stuck import DEFAULT_STUCK_AFTER
from fleet.migration.stuck import check as check_stuck
from fleet.outcome import UNREACHED, Edge, Outcome, Status, stamp
from fleet.records.plan_file import Approved, DriftedSincePlan
from fleet.state.checkpoint import Checkpoint, Stored

ACTIVE, FAILED = "ACTIVE", "FAILED"
# What the state may last have seen of a domain on its target: found off it now, it drifted.
ON_TARGET = frozenset({Status.UNCHANGED, Status.PENDING, Status.VERIFIED, Status.UPDATED})


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


async def _call(
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


async def _describe(ctx: RowContext, row: Row, counter: AttemptCounter, despite_stop: bool = False) -> dict[str, Any]:
    out = await _call(
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


def _current_certificate(row: Row, description: dict[str, Any]) -> str:
    """Return the domain's current certificate ARN, or raise RowFailed saying why it cannot be updated."""
    if not description or not description.get("Domain"):
        raise RowFailed("DomainNotFound", f"no user pool domain {row.domain!r} in {row.account_id}/{row.region}")
    pool = description.get("UserPoolId")
    if pool != row.user_pool_id:
        raise RowFailed("DomainPoolMismatch", f"{row.domain!r} belongs to user pool {pool}, not {row.user_pool_id}")
    status = description.get("Status")
    if status in ("CREATING", "DELETING"):
        raise RowFailed("DomainNotActive", f"{row.domain!r} is {status}")
    config = description.get("CustomDomainConfig") or {}
    current = config.get("CertificateArn")
    if not current:
        raise RowFailed("NotACustomDomain", f"{row.domain!r} is a prefix domain: it has no certificate to replace")
    return str(current)


async def _describe_with(ctx: RowContext, row: Row, counter: AttemptCounter, prefetch: bool) -> dict[str, Any]:
    """Describe the domain; with ``prefetch``, describe its target certificate at the same time (its answer, or
    its error, waits in the run's certificate checks for ``_preflight``)."""
    if not prefetch:
        return await _describe(ctx, row, counter)
    failed: Exception | None = None
    description: dict[str, Any] = {}
    async with anyio.create_task_group() as tg:
        tg.start_soon(ctx.certificates.fetch, row.certificate_arn, _certificate_describer(ctx, row, counter))
        try:
            description = await _describe(ctx, row, counter)
        except Exception as exc:  # re-raised as is, not wrapped in the task group's ExceptionGroup
            failed = exc
            tg.cancel_scope.cancel()
    if failed is not None:
        raise failed
    return description


def _certificate_describer(
    ctx: RowContext, row: Row, counter: AttemptCounter, arn: str | None = None
) -> Callable[[], Awaitable[Any]]:
    certificate = arn or row.certificate_arn

    async def describe_certificate() -> dict[str, Any]:
        acm = await ctx.acm()
        result: dict[str, Any] = await _call(
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


async def _preflight(ctx: RowContext, row: Row, counter: AttemptCounter, current: str) -> None:
    """The target certificate's checks. Returning a domain to the certificate the tool moved it from (a rollback
    row, on the certificate it rolls back from) waives --min-validity-days: that certificate is, by definition,
    the one about to expire. Expired, revoked, deleted or non-covering still fail the row."""
    returning = row.rollback_from is not None and current == row.rollback_from
    describe = _certificate_describer(ctx, row, counter)
    await ctx.certificates.verify(row.certificate_arn, row.domain, describe, 0.0 if returning else None)


async def _settle(
    ctx: RowContext, row: Row, counter: AttemptCounter, status: str | None, outcome: Outcome, last: Outcome | None
) -> Status:
    """The state of a domain we wrote: verified when ACTIVE and its edge serves the target, else pending (or, with
    --wait, polled: Describe until ACTIVE, then the edge, at the same growing interval, until --wait-timeout)."""
    clock = ctx.calls.clock
    interval, deadline = ctx.mode.wait_interval, clock.monotonic() + ctx.mode.wait_timeout
    while True:
        if status == ACTIVE:
            return await _at_edge(ctx, row, counter, outcome, last, interval, deadline)
        if status == FAILED:
            raise RowFailed("DomainFailed", f"Cognito reports {row.domain!r} FAILED after the certificate change")
        remaining = deadline - clock.monotonic()
        if not ctx.mode.wait or remaining <= 0 or ctx.stopping:
            written_at = ctx.checkpoint.written_at(row.domain, row.certificate_arn)
            check_stuck(row.domain, "still UPDATING", written_at, clock.now(), ctx.mode.stuck_after)
            return Status.PENDING
        await clock.sleep(min(interval, remaining))
        interval = min(interval * 1.5, 60.0)
        try:
            description = await _describe(ctx, row, counter)
        except StopRequested:
            return Status.PENDING  # the write was answered; the run stops polling (the next run verifies)
        if _current_certificate(row, description) != row.certificate_arn:
            raise RowFailed("CertificateChanged", f"{row.domain!r} left the target certificate while we waited")
        status = description.get("Status")


async def _at_edge(
    ctx: RowContext,
    row: Row,
    counter: AttemptCounter,
    outcome: Outcome,
    last: Outcome | None,
    interval: float,
    deadline: float,
) -> Status:
    """Cognito says ACTIVE on the target: verified once the edge serves it. An edge still on the old (or another)
    certificate is polled with --wait until the deadline; an unreachable one (after its few tries) is not waited
    for: the row ends pending, and the next run looks again."""
    if ctx.edge is None:
        outcome.edge = Edge.UNCHECKED
        return Status.VERIFIED
    if last is not None and last.status is Status.VERIFIED and last.edge == Edge.SERVED:
        outcome.edge, outcome.edge_not_after = last.edge, last.edge_not_after  # proven before: no handshake
        return Status.VERIFIED
    clock = ctx.calls.clock
    while True:
        try:
            seen = await look(ctx, ctx.edge, row, counter, outcome.cloudfront_domain, outcome.previous_certificate_arn)
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
        remaining = deadline - clock.monotonic()
        if not ctx.mode.wait or remaining <= 0 or ctx.stopping:
            written_at = ctx.checkpoint.written_at(row.domain, row.certificate_arn)
            check_stuck(
                row.domain, f"ACTIVE but its edge still serves {what}", written_at, clock.now(), ctx.mode.stuck_after
            )
            return Status.PENDING
        await clock.sleep(min(interval, remaining))
        interval = min(interval * 1.5, 60.0)


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
    if isinstance(result, str):
        return Seen(Edge.UNREACHABLE, reason=result)
    target = await ctx.certificates.described(row.certificate_arn, _certificate_describer(ctx, row, counter))
    if is_certificate(result, target.get("Certificate")):
        return Seen(Edge.SERVED, result)
    before = None
    if previous and previous != row.certificate_arn:
        describe = _certificate_describer(ctx, row, counter, previous)
        try:
            before = (await ctx.certificates.described(previous, describe)).get("Certificate")
        except StopRequested:
            raise
        except Exception:  # not describable (deleted, another account): the served one is then "other"
            before = None
    return Seen(compare(result, target.get("Certificate"), before), result)


async def migrate_row(ctx: RowContext, row: Row, stored: Stored | None) -> Outcome | None:
    """Move one domain to its target certificate; never raises for AWS errors, returns a failed outcome.

    Every row is described first, whatever the state says. The certificate the domain had before the tool first
    moved it to this target (any earlier run, any manifest: ``moves`` in the state) makes a domain found on its
    target ``pending``/``verified`` with that certificate as previous, not ``unchanged``; a domain the state last
    saw on its target but now finds off it drifted, and is written again. Returns None, recording nothing, when
    the run is stopping before the row's next call was sent.
    """
    if ctx.stopping:
        return None
    counter = AttemptCounter()
    outcome = Outcome(
        domain=row.domain, status=Status.FAILED, certificate_arn=row.certificate_arn, started_at=ctx.now()
    )
    last = stored.outcome if stored and stored.outcome.certificate_arn == row.certificate_arn else None
    original = ctx.checkpoint.original(row.domain, row.certificate_arn)
    current: str | None = None
    try:
        if ctx.approved is not None:
            ctx.approved.entry(row)  # a row the plan does not have: nothing is called for it
        # Describe and the certificate check need only the account's credentials: unless the state last saw the
        # domain on this target (then most likely nothing is to be written, and no certificate call is made),
        # both go at once, one round trip on the critical path instead of two.
        prefetch = last is None or last.status not in ON_TARGET
        description = await _describe_with(ctx, row, counter, prefetch)
        current = _current_certificate(row, description)
        outcome.cloudfront_domain = description.get("CloudFrontDistribution")
        if ctx.approved is not None:
            outcome.previous_certificate_arn = current
            ctx.approved.check_current(row, current, original)
        if current == row.certificate_arn:
            if original and original != current and not ctx.mode.plan:
                outcome.previous_certificate_arn, outcome.after_write = original, True  # the tool's write
                outcome.status = await _settle(ctx, row, counter, description.get("Status"), outcome, last)
            elif description.get("Status") == FAILED:
                raise RowFailed("DomainFailed", f"Cognito reports {row.domain!r} FAILED")
            else:
                outcome.status, outcome.previous_certificate_arn = Status.UNCHANGED, current
        else:
            outcome.previous_certificate_arn = current
            outcome.drift = last is not None and last.status in ON_TARGET
            await _preflight(ctx, row, counter, current)
            if ctx.approved is not None:
                ctx.approved.check_write(row)
            if ctx.mode.plan:
                outcome.status = Status.PLANNED
            else:
                outcome.cloudfront_domain, status = await _write(ctx, row, counter, description, current, outcome)
                outcome.written_at = ctx.now()  # answered (or confirmed by a describe): this run wrote it
                outcome.status = await _settle(ctx, row, counter, status, outcome, None)
        if ctx.mode.plan and ctx.edge is not None and outcome.status in (Status.PLANNED, Status.UNCHANGED):
            # What clients are served now (and until when): a plan shows the expiring certificates they see.
            seen = await look(ctx, ctx.edge, row, counter, outcome.cloudfront_domain, current)
            outcome.edge, outcome.edge_not_after = seen.edge, seen.not_after
            if seen.reason:
                outcome.error_message = UNREACHED + str(seen.reason)
    except StopRequested:
        return None  # nothing of this row was sent since it was (re)started: the next run does it
    except StateWriteError:
        raise  # the run's problem, not the row's: its in-flight mark failed, so its write was never sent
    except RowFailed as exc:
        outcome.error_code, outcome.error_message = exc.code, exc.message
    except DriftedSincePlan as exc:  # not written: the fleet is no longer what the approved plan saw
        outcome.status, outcome.error_code, outcome.error_message = Status.DRIFTED_SINCE_PLAN, exc.code, exc.message
    except Exception as exc:  # an AWS or connection error that retries did not cure
        failure = classify(exc)
        outcome.error_code, outcome.error_message = failure.code, failure.message
    if ctx.expiry and current is not None:
        on = row.certificate_arn if outcome.written_at else current
        describe = _certificate_describer(ctx, row, counter, on)
        outcome.certificate_not_after = await ctx.certificates.not_after(on, describe)
    outcome.attempts = counter.attempts
    outcome.finished_at = ctx.now()
    await ctx.checkpoint.record(outcome, row)
    return outcome


async def _write(
    ctx: RowContext, row: Row, counter: AttemptCounter, description: dict[str, Any], current: str, outcome: Outcome
) -> tuple[str | None, str | None]:
    """Update the certificate under the write-once rule (``fleet.aws.write_once``): (CloudFront domain, Status if
    a describe saw it). This row gives the rule its two parts: the in-flight mark, and the look (a describe,
    through the same limiters, that tells whether an attempt of unknown outcome put the domain on its target)."""

    async def look() -> dict[str, Any] | None:
        seen = await _describe(ctx, row, counter, despite_stop=True)  # part of a write already sent
        if _current_certificate(row, seen) != row.certificate_arn:
            return None
        return {"CloudFrontDomain": seen.get("CloudFrontDistribution"), "Status": seen.get("Status")}

    async def mark_in_flight() -> None:
        outcome.after_write = True  # from here on a failure is the write's: the failure budget counts it
        await ctx.checkpoint.record(
            Outcome(
                domain=row.domain,
                status=Status.IN_FLIGHT,
                certificate_arn=row.certificate_arn,
                previous_certificate_arn=current,
                attempts=counter.attempts,
                started_at=outcome.started_at,
                finished_at=ctx.now(),  # the write's time on the run's clock: --stuck-after counts from it
                drift=outcome.drift,
            ),
            row,
        )

    request: dict[str, Any] = {
        "Domain": row.domain,
        "UserPoolId": row.user_pool_id,
        "CustomDomainConfig": {"CertificateArn": row.certificate_arn},
    }
    if description.get("ManagedLoginVersion") is not None:
        request["ManagedLoginVersion"] = description["ManagedLoginVersion"]
    updated = await _call(
        ctx,
        row,
        counter,
        ctx.cognito,
        "UpdateUserPoolDomain",
        ctx.region_limits,
        row.user_pool_id,
        write=WriteOnce(mark_in_flight, look),
        **request,
    )
    return updated.get("CloudFrontDomain") or outcome.cloudfront_domain, updated.get("Status")
