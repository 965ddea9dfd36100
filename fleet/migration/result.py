"""What a run (or a plan) ends with: the counts, why it stopped, the exit code, and the lines it prints."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from fleet.errors import EXIT_FAILED_ROWS, EXIT_OK, EXIT_RESUMABLE
from fleet.manifest import Row
from fleet.migration.engine import Tally
from fleet.migration.stuck import age, human
from fleet.outcome import SUCCESS, Status
from fleet.records.report import EdgeTally, summary_line
from fleet.state.checkpoint import Checkpoint
from fleet.state.s3_objects import S3Location


@dataclass(frozen=True, slots=True)
class RunResult:
    counts: collections.Counter[str]
    report: Path
    report_jsonl: Path
    checkpoint: Path | S3Location  # where the state is (str() names it either way)
    stopped: str | None = None  # why the run stopped early, if it did
    aborted: bool = False  # stopped because of failures (budget, canary), not time
    drift: int = 0  # domains found moved off their target by someone else, and written again
    run_id: str = ""
    edges: EdgeTally | None = None  # the report's edge column; None: --no-edge-check
    tally: Tally = dataclasses.field(default_factory=Tally)
    fleet_held: str | None = None  # the state's fleet hold: nothing was called (the one line to print)
    pending: tuple[tuple[str, float], ...] = ()  # pending rows' (domain, seconds since the write), oldest first
    stuck_after: float | None = None
    plan_out: Path | None = None  # plan --out: the plan file written (None: not asked for, or the plan stopped early)
    manifest: str = "MANIFEST"  # the manifest the run (or plan) read, for the next command it suggests

    def lines(self, read_only: bool = False) -> list[str]:
        """What `run` and `plan` print at the end: why it stopped early, the counts, where the files are."""
        if self.fleet_held:
            return [self.fleet_held]
        out = []
        if self.stopped:
            hint = "" if self.aborted else "; rerun the same command to resume"
            out.append(f"stopped early ({self.stopped}){hint}")
        out.append(summary_line(self.counts))
        out.extend(self.tally.notes)
        before, after = self.tally.before_write, self.tally.after_write
        if before:
            out.append(
                f"failed before any write (pre-flight, access; not counted against the failure budget): "
                f"{sum(before.values())} ({_codes(before)})"
            )
        if after:
            out.append(
                f"failed after a write (the failure budget counts these): {sum(after.values())} ({_codes(after)})"
            )
        if self.counts[str(Status.HELD)]:
            out.append(
                f"held: {self.counts[str(Status.HELD)]} domains stay on their previous certificate by a rollback "
                f"(see the report; to move them forward: cognito-fleet release {self.checkpoint} --domain D | --all)"
            )
        if self.pending:
            domain, seconds = self.pending[0]
            limit = (
                f"; still UPDATING after {_span(self.stuck_after)} they fail StuckUpdating" if self.stuck_after else ""
            )
            out.append(
                f"pending: {len(self.pending)} domains still distributing; oldest written {_span(seconds)} ago "
                f"({domain}){limit}"
            )
        if self.drift:
            out.append(f"drift: {self.drift} domains had been moved off their target by someone else: written again")
        if self.counts[str(Status.DRIFTED_SINCE_PLAN)]:
            out.append(
                f"drifted since the plan: {self.counts[str(Status.DRIFTED_SINCE_PLAN)]} domains not written (on "
                "another certificate than the plan saw, or not planned to be written; see the report): make a new plan"
            )
        out += self.edge_lines(read_only)
        out.append(f"report: {self.report} (and {self.report_jsonl})")
        if self.plan_out is not None:
            then = f"cognito-fleet run {self.manifest} --plan {self.plan_out}"
            out.append(f"plan: {self.plan_out} (to approve; then: {then})")
        if not read_only:
            out.append(f"checkpoint: {self.checkpoint}")
        return out

    def edge_lines(self, read_only: bool = False) -> list[str]:
        """What the edge served, and a warning when it was not checked or could not be reached."""
        if self.edges is None:
            if read_only:
                return []
            return [
                "warning: edge not checked (--no-edge-check): verified means Cognito says ACTIVE; clients may still "
                "be served the previous certificate for up to an hour"
            ]
        out = []
        if self.edges.counts:
            out.append("edge: " + ", ".join(f"{k}={v}" for k, v in sorted(self.edges.counts.items())))
        if self.edges.unreachable:
            why = "; ".join(f"{n}: {kind}" for kind, n in self.edges.unreachable.most_common())
            out.append(
                f"warning: {sum(self.edges.unreachable.values())} edges could not be reached ({why}); those domains "
                "stay pending and the next run looks again; a runner without egress: --no-edge-check"
            )
        return out

    @property
    def exit_code(self) -> int:
        if self.fleet_held:
            return EXIT_OK
        # Stopped early (signal, runtime, an outage past its patience) with work left: rows not attempted, or
        # rows whose wait for ACTIVE and the edge was cut short. The rerun does it; cron and metrics must see it.
        left = self.counts[str(Status.SKIPPED)] + self.counts[str(Status.PENDING)]
        if self.stopped and not self.aborted and left:
            return EXIT_RESUMABLE
        ok = sum(self.counts[str(s)] for s in SUCCESS)
        return EXIT_OK if ok == sum(self.counts.values()) else EXIT_FAILED_ROWS


def _codes(counts: collections.Counter[str]) -> str:
    return ", ".join(f"{code}={n}" for code, n in counts.most_common())


def _span(seconds: float | None) -> str:
    return human(timedelta(seconds=seconds or 0))


def pending_ages(rows: Sequence[Row], checkpoint: Checkpoint, now: datetime) -> tuple[tuple[str, float], ...]:
    """Rows that ended ``pending`` in this pass, with the time since the tool's write, oldest first."""
    ages = []
    for row in rows:
        stored = checkpoint.stored(row.domain)
        if stored is None or stored.pass_ != checkpoint.pass_ or stored.outcome.status is not Status.PENDING:
            continue
        if stored.outcome.certificate_arn != row.certificate_arn:
            continue
        waited = age(checkpoint.written_at(row.domain, row.certificate_arn), now)
        ages.append((row.domain, waited.total_seconds() if waited else 0.0))
    return tuple(sorted(ages, key=lambda a: -a[1]))
