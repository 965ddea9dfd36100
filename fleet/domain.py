"""One row's work against Cognito: describe, decide, write, record.

The write changes only the certificate: the current ManagedLoginVersion read from Describe is sent
back with it (SecurityPolicy is not modelled by the pinned botocore, so Cognito keeps its own value).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fleet.checkpoint import Checkpoint
from fleet.limits import Limits, RegionLimits
from fleet.manifest import Row
from fleet.outcome import Outcome, Status, utc_now
from fleet.retry import AttemptCounter, BackoffPolicy, Failure, Sleep, call_with_retry, classify
from fleet.stop import Stop


class RowFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(slots=True)
class RowContext:
    """What one row needs: its client, its limits, the retry policy and the checkpoint."""

    cognito: Any
    limits: Limits
    region_limits: RegionLimits
    policy: BackoffPolicy
    sleep: Sleep
    checkpoint: Checkpoint
    on_retry: Callable[[Row, Failure, float], None] | None = None
    stop: Stop | None = None

    @property
    def stopping(self) -> bool:
        return self.stop is not None and self.stop.requested


class _Stopped(Exception):
    """The run is stopping and this row's next call has not been sent."""


async def _call(
    ctx: RowContext,
    row: Row,
    counter: AttemptCounter,
    operation: str,
    before_first_send: Callable[[], Awaitable[None]] | None = None,
    **kwargs: Any,
) -> Any:
    """One Cognito call through the limits and the retry policy.

    ``before_first_send`` runs once, after the rate limiters let the call go and just before it is sent:
    the in-flight mark goes there, so it covers only writes that are really about to leave.
    """
    method: Callable[..., Awaitable[Any]] = getattr(ctx.cognito, _snake(operation))
    sent = False

    async def attempt() -> Any:
        nonlocal sent
        async with ctx.limits.call(ctx.region_limits, row.user_pool_id, operation):
            if not sent:
                if ctx.stopping:
                    raise _Stopped
                if before_first_send is not None:
                    await before_first_send()
                sent = True
            return await method(**kwargs)

    def on_retry(failure: Failure, delay: float) -> None:
        if ctx.on_retry is not None:
            ctx.on_retry(row, failure, delay)

    return await call_with_retry(attempt, ctx.policy, counter, ctx.sleep, on_retry)


def _snake(operation: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")


def _check_description(row: Row, description: dict[str, Any]) -> str | None:
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


async def migrate_row(ctx: RowContext, row: Row, resumed: Outcome | None) -> Outcome | None:
    """Move one domain to its target certificate; never raises for AWS errors, returns a failed outcome.

    Returns None, recording nothing, when the run is stopping before the row's write was sent.
    """
    if ctx.stopping:
        return None
    counter = AttemptCounter()
    outcome = Outcome(
        domain=row.domain, status=Status.FAILED, certificate_arn=row.certificate_arn, started_at=utc_now()
    )
    # A row whose write was sent before (in flight at a crash, or failed after sending it) knows the
    # certificate it had: if the domain is now on the target, that write took effect.
    previous = None
    if resumed and resumed.status in (Status.IN_FLIGHT, Status.FAILED):
        previous = resumed.previous_certificate_arn
    try:
        described = await _call(ctx, row, counter, "DescribeUserPoolDomain", None, Domain=row.domain)
        description = described.get("DomainDescription") or {}
        current = _check_description(row, description)
        outcome.cloudfront_domain = description.get("CloudFrontDistribution")
        if current == row.certificate_arn:
            if previous and previous != current:
                outcome.status, outcome.previous_certificate_arn = Status.UPDATED, previous
            else:
                outcome.status, outcome.previous_certificate_arn = Status.UNCHANGED, current
        else:
            outcome.previous_certificate_arn = current

            async def mark_in_flight() -> None:
                await ctx.checkpoint.record(
                    Outcome(
                        domain=row.domain,
                        status=Status.IN_FLIGHT,
                        certificate_arn=row.certificate_arn,
                        previous_certificate_arn=current,
                        attempts=counter.attempts,
                        started_at=outcome.started_at,
                    )
                )

            request: dict[str, Any] = {
                "Domain": row.domain,
                "UserPoolId": row.user_pool_id,
                "CustomDomainConfig": {"CertificateArn": row.certificate_arn},
            }
            if description.get("ManagedLoginVersion") is not None:
                request["ManagedLoginVersion"] = description["ManagedLoginVersion"]
            updated = await _call(ctx, row, counter, "UpdateUserPoolDomain", mark_in_flight, **request)
            outcome.status = Status.UPDATED
            outcome.cloudfront_domain = updated.get("CloudFrontDomain") or outcome.cloudfront_domain
    except _Stopped:
        return None  # nothing of this row was sent since it was (re)started: the next run does it
    except RowFailed as exc:
        outcome.error_code, outcome.error_message = exc.code, exc.message
    except Exception as exc:  # an AWS or connection error that retries did not cure
        failure = classify(exc)
        outcome.error_code, outcome.error_message = failure.code, failure.message
    outcome.attempts = counter.attempts
    outcome.finished_at = utc_now()
    await ctx.checkpoint.record(outcome)
    return outcome
