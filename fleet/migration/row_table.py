"""One row's decisions in one place, like the write-once rule (``fleet.aws.write_once``): what the row does next,
from what it has seen so far. ``decide`` is pure; ``fleet.migration.row`` runs the steps it names (describe, the
pre-flight, the write, settling) and asks it again after each. Its table (one unit test per row:
``tests/unit/test_row_table.py``), first match wins:

==========================================================================  ==========================================
seen                                                                        next
==========================================================================  ==========================================
``run --plan``, and the plan has no line for the row                        drifted-since-plan (NotInPlan), no call
not described yet                                                           describe
no such domain, another user pool, CREATING/DELETING, a prefix domain       failed (its code), nothing written
``run --plan``, the plan saw another certificate (and it is not its own     drifted-since-plan
write seen again)                                                           (CertificateChangedSincePlan)
on the target, which the tool moved it to (the state's move), in a run      settle: pending / verified (previous: the
                                                                            certificate before the move)
on the target, Cognito says FAILED                                          failed (DomainFailed)
on the target otherwise (a plan; or not moved by the tool)                  unchanged
off the target, its target certificate not checked yet                      pre-flight (the certificate's checks)
the pre-flight failed                                                       failed (its code), nothing written
``run --plan``, and the plan did not plan this write                        drifted-since-plan (NotPlannedToWrite)
off the target, checked, in a plan                                          planned
off the target, checked, in a run                                           write once, then settle
==========================================================================  ==========================================

The ``run --plan`` rule itself is ``fleet.records.plan_file.Approved``: here it is one input (``approved``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from fleet.manifest import Row
from fleet.records.plan_file import DriftedSincePlan

FAILED = "FAILED"


class Next(StrEnum):
    DESCRIBE = "describe"
    PREFLIGHT = "preflight"
    FAIL = "fail"
    DRIFTED_SINCE_PLAN = "drifted-since-plan"
    UNCHANGED = "unchanged"
    SETTLE = "settle"
    PLANNED = "planned"
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a row is not written: its report's error code and message."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Decision:
    next: Next
    refusal: Refusal | None = None  # FAIL, DRIFTED_SINCE_PLAN: why
    previous: str | None = None  # the outcome's previous certificate, where this decision names it


class PlanRule(Protocol):
    """The ``run --plan`` rule (``fleet.records.plan_file.Approved``): each check raises DriftedSincePlan."""

    def entry(self, row: Row) -> object: ...

    def check_current(self, row: Row, current: str, original: str | None) -> None: ...

    def check_write(self, row: Row) -> None: ...


@dataclass(frozen=True, slots=True)
class Facts:
    """What the row knows when it decides."""

    row: Row
    plan: bool = False  # a plan pass: nothing is written
    original: str | None = None  # the state's move: the certificate the domain had before the tool moved it
    approved: PlanRule | None = None  # run --plan
    description: Mapping[str, Any] | None = None  # DescribeUserPoolDomain's DomainDescription, once described
    checked: bool = False  # the target certificate's pre-flight ran
    preflight: Refusal | None = None  # ... and failed


def current_certificate(row: Row, description: Mapping[str, Any]) -> str | Refusal:
    """The domain's current certificate ARN, or why it cannot be updated."""
    if not description or not description.get("Domain"):
        return Refusal("DomainNotFound", f"no user pool domain {row.domain!r} in {row.account_id}/{row.region}")
    pool = description.get("UserPoolId")
    if pool != row.user_pool_id:
        return Refusal("DomainPoolMismatch", f"{row.domain!r} belongs to user pool {pool}, not {row.user_pool_id}")
    status = description.get("Status")
    if status in ("CREATING", "DELETING"):
        return Refusal("DomainNotActive", f"{row.domain!r} is {status}")
    current = (description.get("CustomDomainConfig") or {}).get("CertificateArn")
    if not current:
        return Refusal("NotACustomDomain", f"{row.domain!r} is a prefix domain: it has no certificate to replace")
    return str(current)


def decide(facts: Facts) -> Decision:
    """The table above, in its order."""
    row, approved = facts.row, facts.approved
    if approved is not None and (drifted := _plan_says(lambda: approved.entry(row))):
        return drifted
    if facts.description is None:
        return Decision(Next.DESCRIBE)
    current = current_certificate(row, facts.description)
    if isinstance(current, Refusal):
        return Decision(Next.FAIL, current)
    if approved is not None and (drifted := _plan_says(lambda: approved.check_current(row, current, facts.original))):
        return drifted
    if current == row.certificate_arn:
        if facts.original and facts.original != current and not facts.plan:
            return Decision(Next.SETTLE, previous=facts.original)  # the tool's write, seen again
        if facts.description.get("Status") == FAILED:
            return Decision(Next.FAIL, Refusal("DomainFailed", f"Cognito reports {row.domain!r} FAILED"))
        return Decision(Next.UNCHANGED, previous=current)
    if not facts.checked:
        return Decision(Next.PREFLIGHT, previous=current)
    if facts.preflight is not None:
        return Decision(Next.FAIL, facts.preflight, previous=current)
    if approved is not None and (drifted := _plan_says(lambda: approved.check_write(row))):
        return drifted
    return Decision(Next.PLANNED if facts.plan else Next.WRITE, previous=current)


def _plan_says(check: Callable[[], object]) -> Decision | None:
    try:
        check()
    except DriftedSincePlan as exc:  # not written: the fleet is no longer what the approved plan saw
        return Decision(Next.DRIFTED_SINCE_PLAN, Refusal(exc.code, exc.message))
    return None
