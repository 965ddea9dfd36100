"""The row's decision table (fleet/migration/row_table.py), one test per row, without the sandbox; and its one poll
loop (fleet/migration/settle.py) on virtual time."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fleet.clock import SystemClock
from fleet.errors import RowFailed
from fleet.manifest import Row
from fleet.migration.row_context import Mode
from fleet.migration.row_table import Decision, Facts, Next, Refusal, decide
from fleet.migration.settle import Schedule, Waiting, poll
from fleet.outcome import Status
from fleet.records.plan_file import Approved, Plan, PlannedDomain

from .. import virtual_time

OLD, NEW, OTHER = "arn:aws:acm:us-east-1:111111111111:certificate/old", "arn:.../new", "arn:.../other"
ROW = Row(2, "111111111111", "eu-west-1", "eu-west-1_abc", "auth.example.com", NEW)


def described(certificate: str | None = OLD, status: str = "ACTIVE", **more: Any) -> dict[str, Any]:
    config = {"CertificateArn": certificate} if certificate else None
    return {
        "Domain": ROW.domain,
        "UserPoolId": ROW.user_pool_id,
        "Status": status,
        "CustomDomainConfig": config,
        **more,
    }


def approved(current: str | None = OLD, action: str = "planned", row: Row = ROW) -> Approved:
    line = PlannedDomain(row.account_id, row.region, row.user_pool_id, row.domain, current, row.certificate_arn, action)
    made = datetime(2026, 12, 1, tzinfo=UTC)
    return Approved(Plan(Path("p.json"), "0" * 64, "plan-1", made, "hub", "m.csv", "0" * 64, (line,), {}))


def seen(**facts: Any) -> Decision:
    return decide(Facts(ROW, **{"description": described(), "checked": True, **facts}))


def test_not_in_the_approved_plan_is_drifted_before_any_call() -> None:
    other = dataclasses.replace(ROW, domain="other.example.com")
    decision = decide(Facts(ROW, approved=approved(row=other)))  # not even described
    assert decision.next is Next.DRIFTED_SINCE_PLAN and decision.refusal is not None
    assert decision.refusal.code == "NotInPlan"


def test_not_described_yet_describes() -> None:
    assert decide(Facts(ROW)) == Decision(Next.DESCRIBE)
    assert decide(Facts(ROW, approved=approved())) == Decision(Next.DESCRIBE)


@pytest.mark.parametrize(
    ("description", "code"),
    [
        ({}, "DomainNotFound"),
        ({**described(), "UserPoolId": "eu-west-1_zzz"}, "DomainPoolMismatch"),
        (described(status="CREATING"), "DomainNotActive"),
        (described(status="DELETING"), "DomainNotActive"),
        (described(certificate=None), "NotACustomDomain"),
    ],
)
def test_a_domain_that_cannot_be_updated_fails_with_its_code(description: dict[str, Any], code: str) -> None:
    decision = seen(description=description, checked=False)
    assert decision.next is Next.FAIL and decision.refusal is not None and decision.refusal.code == code


def test_the_plan_saw_another_certificate_drifted() -> None:
    decision = seen(description=described(OTHER), approved=approved(current=OLD), checked=False)
    assert decision.next is Next.DRIFTED_SINCE_PLAN and decision.refusal is not None
    assert decision.refusal.code == "CertificateChangedSincePlan"
    # The plan's own write, seen again by a resumed run: not a drift (the state's move says so).
    again = seen(description=described(NEW), approved=approved(current=OLD), original=OLD)
    assert again == Decision(Next.SETTLE, previous=OLD)


def test_on_the_target_the_tool_moved_it_to_settles_in_a_run_with_the_moves_previous() -> None:
    assert seen(description=described(NEW, status="UPDATING"), original=OLD) == Decision(Next.SETTLE, previous=OLD)


def test_on_the_target_failed_in_cognito_fails() -> None:
    decision = seen(description=described(NEW, status="FAILED"))
    assert decision.next is Next.FAIL and decision.refusal == Refusal(
        "DomainFailed", f"Cognito reports {ROW.domain!r} FAILED"
    )
    assert decision.previous is None  # the report names no previous certificate for it


def test_on_the_target_otherwise_unchanged() -> None:
    assert seen(description=described(NEW)) == Decision(Next.UNCHANGED, previous=NEW)
    # A plan never settles: the tool's own earlier write is, to a plan, a domain already on its target.
    assert seen(description=described(NEW), original=OLD, plan=True) == Decision(Next.UNCHANGED, previous=NEW)


def test_off_the_target_not_checked_yet_runs_the_preflight() -> None:
    assert seen(checked=False) == Decision(Next.PREFLIGHT, previous=OLD)


def test_the_preflight_failed_fails_with_its_code() -> None:
    refusal = Refusal("CertificateExpired", "expired")
    assert seen(preflight=refusal) == Decision(Next.FAIL, refusal, previous=OLD)
    # The pre-flight's failure comes first: a plan that did not plan the write is not asked.
    assert seen(preflight=refusal, approved=approved(action="failed")).refusal == refusal


def test_the_plan_did_not_plan_this_write_drifted() -> None:
    decision = seen(approved=approved(action="unchanged"))
    assert decision.next is Next.DRIFTED_SINCE_PLAN and decision.refusal is not None
    assert decision.refusal.code == "NotPlannedToWrite"


def test_off_the_target_checked_plans_in_a_plan_and_writes_in_a_run() -> None:
    assert seen(plan=True) == Decision(Next.PLANNED, previous=OLD)
    assert seen() == Decision(Next.WRITE, previous=OLD)
    assert seen(approved=approved()) == Decision(Next.WRITE, previous=OLD)  # the approved plan's own write


# ---- the one poll loop (settling, the edge), on virtual time ----------------------------------------------------


class _State:
    def __init__(self, written_at: str | None) -> None:
        self.at = written_at

    def written_at(self, domain: str, certificate_arn: str) -> str | None:
        return self.at


class _Stop:
    requested = False


@dataclasses.dataclass
class _Ctx:
    """What the poll loop reads of a row's context: the clock, the stop flag, --wait, the state's write time."""

    mode: Mode
    checkpoint: _State
    calls: Any = None
    stopping: bool = False

    def __post_init__(self) -> None:
        self.calls = type("Calls", (), {"clock": SystemClock(), "stop": _Stop()})()


def polled(answers: list[Status | Waiting], mode: Mode, written_at: str | None = None) -> tuple[Status, int, float]:
    """(status, probes, virtual seconds) of a poll whose probe gives ``answers`` in turn."""
    ctx = _Ctx(mode, _State(written_at))
    probes = 0

    async def probe() -> Status | Waiting:
        nonlocal probes
        probes += 1
        return answers.pop(0)

    async def go() -> Status:
        every = Schedule(mode.wait_interval, SystemClock().monotonic() + mode.wait_timeout)
        return await poll(ctx, ROW, probe, every)  # type: ignore[arg-type]  # a fake of what it reads

    status, took = virtual_time.run(go())
    return status, probes, took


def test_poll_without_wait_looks_once_and_leaves_the_row_pending() -> None:
    status, probes, took = polled([Waiting("still UPDATING")], Mode())
    assert (status, probes) == (Status.PENDING, 1) and took < 0.01  # no sleep


def test_poll_with_wait_sleeps_a_growing_interval_until_an_answer() -> None:
    status, probes, took = polled([Waiting("x"), Waiting("x"), Waiting("x"), Status.VERIFIED], Mode(wait=True))
    assert (status, probes) == (Status.VERIFIED, 4)
    assert took == pytest.approx(15 + 22.5 + 33.75, abs=0.01)


def test_poll_stops_at_the_deadline_pending() -> None:
    mode = Mode(wait=True, wait_timeout=20.0)
    status, probes, took = polled([Waiting("x")] * 5, mode)
    assert (status, probes) == (Status.PENDING, 3) and took == pytest.approx(
        20, abs=0.01
    )  # slept 15, then the last 5 s


def test_poll_past_stuck_after_since_the_write_fails_stuck() -> None:
    long_ago = (datetime.now(UTC) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(RowFailed) as failed:
        polled([Waiting("still UPDATING")], Mode(), written_at=long_ago)
    assert failed.value.code == "StuckUpdating" and "still UPDATING" in failed.value.message
