"""One row's work against Cognito and ACM: the steps its decision table (``fleet.migration.row_table``) names, in a
loop that asks the table after each: describe, the pre-flight, then the outcome (unchanged / planned / failed /
drifted-since-plan) or the write once (``fleet.aws.write_once``) and settling (``fleet.migration.settle``); recorded.

The write changes only the certificate: the current ManagedLoginVersion read from Describe is sent
back with it (SecurityPolicy is not modelled by the pinned botocore, so Cognito keeps its own value).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from fleet.aws.retry import AttemptCounter, classify
from fleet.aws.stop import StopRequested
from fleet.aws.write_once import WriteOnce
from fleet.errors import RowFailed, StateWriteError
from fleet.manifest import Row
from fleet.migration.row_context import Mode as Mode
from fleet.migration.row_context import RowContext as RowContext
from fleet.migration.row_context import call, certificate_describer, describe, describe_with, look
from fleet.migration.row_table import Decision, Facts, Next, Refusal, current_certificate, decide
from fleet.migration.settle import certificate_of, settle
from fleet.outcome import UNREACHED, Outcome, Status
from fleet.state.checkpoint import Stored

# What the state may last have seen of a domain on its target: found off it now, it drifted.
ON_TARGET = frozenset({Status.UNCHANGED, Status.PENDING, Status.VERIFIED, Status.UPDATED})


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
    facts = Facts(row, ctx.mode.plan, original, ctx.approved)
    try:
        while (decision := decide(facts)).next in (Next.DESCRIBE, Next.PREFLIGHT):
            facts = await _step(ctx, row, counter, outcome, facts, decision, last)
        await _conclude(ctx, row, counter, outcome, facts, decision, last)
    except StopRequested:
        return None  # nothing of this row was sent since it was (re)started: the next run does it
    except StateWriteError:
        raise  # the run's problem, not the row's: its in-flight mark failed, so its write was never sent
    except RowFailed as exc:
        outcome.error_code, outcome.error_message = exc.code, exc.message
    except Exception as exc:  # an AWS or connection error that retries did not cure
        failure = classify(exc)
        outcome.error_code, outcome.error_message = failure.code, failure.message
    current = current_certificate(row, facts.description) if facts.description is not None else None
    if ctx.expiry and isinstance(current, str):  # described: the certificate it ends on (metrics: its expiry)
        on = row.certificate_arn if outcome.written_at else current
        outcome.certificate_not_after = await ctx.certificates.not_after(
            on, certificate_describer(ctx, row, counter, on)
        )
        if ctx.mode.plan:  # the plan file's facts of both certificates (cached: no call made twice)
            describer = functools.partial(certificate_describer, ctx, row, counter)
            outcome.certificates = await ctx.certificates.known((current, row.certificate_arn), describer)
    outcome.attempts = counter.attempts
    outcome.finished_at = ctx.now()
    await ctx.checkpoint.record(outcome, row)
    return outcome


async def _step(
    ctx: RowContext,
    row: Row,
    counter: AttemptCounter,
    outcome: Outcome,
    facts: Facts,
    decision: Decision,
    last: Outcome | None,
) -> Facts:
    """Describe, or the pre-flight: what the table asks to see before it can decide."""
    if decision.next is Next.DESCRIBE:
        # Describe and the certificate check need only the account's credentials: unless the state last saw the
        # domain on this target (then most likely nothing is to be written, and no certificate call is made),
        # both go at once, one round trip on the critical path instead of two.
        prefetch = last is None or last.status not in ON_TARGET
        description = await describe_with(ctx, row, counter, prefetch)
        current = current_certificate(row, description)
        if not isinstance(current, Refusal):
            outcome.cloudfront_domain = description.get("CloudFrontDistribution")
            if ctx.approved is not None:
                outcome.previous_certificate_arn = current
        return dataclasses.replace(facts, description=description)
    assert decision.previous is not None
    outcome.previous_certificate_arn = decision.previous
    outcome.drift = last is not None and last.status in ON_TARGET
    return dataclasses.replace(facts, checked=True, preflight=await _preflight(ctx, row, counter, decision.previous))


async def _conclude(
    ctx: RowContext,
    row: Row,
    counter: AttemptCounter,
    outcome: Outcome,
    facts: Facts,
    decision: Decision,
    last: Outcome | None,
) -> None:
    """What the table decided: the outcome, or the write and its settling."""
    if decision.refusal is not None:
        outcome.error_code, outcome.error_message = decision.refusal.code, decision.refusal.message
        if decision.next is Next.DRIFTED_SINCE_PLAN:
            outcome.status = Status.DRIFTED_SINCE_PLAN
        return
    assert facts.description is not None
    description = dict(facts.description)
    if decision.previous is not None:
        outcome.previous_certificate_arn = decision.previous
    if decision.next is Next.SETTLE:
        outcome.after_write = True  # the tool's write
        outcome.status = await settle(ctx, row, counter, description.get("Status"), outcome, last)
    elif decision.next is Next.WRITE:
        outcome.cloudfront_domain, status = await _write(ctx, row, counter, description, decision.previous, outcome)
        outcome.written_at = ctx.now()  # answered (or confirmed by a describe): this run wrote it
        outcome.status = await settle(ctx, row, counter, status, outcome, None)
    else:
        outcome.status = Status.UNCHANGED if decision.next is Next.UNCHANGED else Status.PLANNED
        if ctx.mode.plan and ctx.edge is not None:
            # What clients are served now (and until when): a plan shows the expiring certificates they see.
            current = certificate_of(row, description)
            seen = await look(ctx, ctx.edge, row, counter, outcome.cloudfront_domain, current)
            outcome.edge, outcome.edge_not_after = seen.edge, seen.not_after
            if seen.reason:
                outcome.error_message = UNREACHED + str(seen.reason)


async def _preflight(ctx: RowContext, row: Row, counter: AttemptCounter, current: str) -> Refusal | None:
    """The target certificate's checks; why it may not be written, or None. Returning a domain to the certificate
    the tool moved it from (a rollback row, on the certificate it rolls back from) waives --min-validity-days: that
    certificate is, by definition, the one about to expire. Expired, revoked, deleted or non-covering still fail."""
    returning = row.rollback_from is not None and current == row.rollback_from
    describe_certificate = certificate_describer(ctx, row, counter)
    try:
        await ctx.certificates.verify(row.certificate_arn, row.domain, describe_certificate, 0.0 if returning else None)
    except (StopRequested, StateWriteError):
        raise
    except RowFailed as exc:
        return Refusal(exc.code, exc.message)
    except Exception as exc:  # DescribeCertificate's error that retries did not cure
        failure = classify(exc)
        return Refusal(failure.code, failure.message)
    return None


async def _write(
    ctx: RowContext,
    row: Row,
    counter: AttemptCounter,
    description: dict[str, Any],
    current: str | None,
    outcome: Outcome,
) -> tuple[str | None, str | None]:
    """Update the certificate under the write-once rule (``fleet.aws.write_once``): (CloudFront domain, Status if
    a describe saw it). This row gives the rule its two parts: the in-flight mark, and the look (a describe,
    through the same limiters, that tells whether an attempt of unknown outcome put the domain on its target)."""

    async def look() -> dict[str, Any] | None:
        seen = await describe(ctx, row, counter, despite_stop=True)  # part of a write already sent
        if certificate_of(row, seen) != row.certificate_arn:
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
    updated = await call(
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
