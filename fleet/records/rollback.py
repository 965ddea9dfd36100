"""Rollback: a manifest that puts every domain the tool wrote back on the certificate it had, and a hold in the
forward state so that the next forward (cron) run does not undo it.

Which domains: every report row the tool wrote, whatever its final status: ``updated``/``pending``/``verified``,
and any other (``failed`` after a write, e.g. ``DomainFailed`` or ``CertificateChanged``; ``skipped`` while its
write was in flight) for which the state holds the tool's in-flight mark of a write to that target (``moves``).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path

from fleet.errors import FleetError
from fleet.manifest import ManifestError, Row, parse, write
from fleet.outcome import WRITTEN, Status
from fleet.records.report import read_report
from fleet.state.checkpoint import Checkpoint
from fleet.state.holds import new_rollback_id, who

NEVER_OURS = frozenset({str(Status.UNCHANGED), str(Status.PLANNED), str(Status.HELD)})


class RollbackError(FleetError):
    """The report cannot be rolled back (not a report, nothing written by the tool, a bad --manifest, no state)."""


@dataclass(slots=True)
class Rollback:
    """What a rollback covers: its rows, how many of each report status, and the domains it could not cover."""

    rows: list[Row] = field(default_factory=list)
    by_status: collections.Counter[str] = field(default_factory=collections.Counter)
    missed: list[str] = field(default_factory=list)  # "domain (status): why"
    rollback_id: str = ""


# Every column a rollback row is built from: checked up front, so a partial report is one line, not a KeyError.
NEEDS = (
    "account_id",
    "region",
    "user_pool_id",
    "domain",
    "status",
    "previous_certificate_arn",
    "certificate_arn",
)


def check_report(report: Path) -> None:
    """ReportError (exit 2, one line) unless ``report`` is a report with every column a rollback reads."""
    read_report(report, NEEDS)


def state_of(report: Path, original: Path | None, given: Path | None) -> Path:
    """The forward state of ``report``: --state, else the checkpoint beside the report (prod.report.csv ->
    prod.checkpoint.sqlite) or beside --manifest, whichever exists."""
    if given is not None:
        if not given.is_file():
            raise RollbackError(f"--state {given}: no such file")
        return given
    stem = report.name.removesuffix(".csv")
    candidates = [report.with_name(stem.removesuffix("report") + "checkpoint.sqlite")]
    if original is not None:
        stem = str(original.with_suffix("") if original.suffix else original)
        candidates.append(Path(f"{stem}.checkpoint.sqlite"))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise RollbackError(
        f"{report}: cannot find its state (looked for {looked}); name it with --state: the rollback holds its "
        "domains there, so that the next forward run does not move them forward again"
    )


def plan_rollback(report: Path, state: Checkpoint | None, original: Path | None = None) -> Rollback:
    """Read a report (CSV) and the state; every domain the tool wrote goes back to its previous certificate."""
    roles: dict[str, tuple[str, str]] = {}
    if original is not None:
        try:
            for row in parse(original).rows:
                roles[row.domain] = (row.role_arn or "", row.external_id or "")
        except ManifestError as exc:
            raise RollbackError(str(exc)) from None
    written = {str(s) for s in WRITTEN}
    out = Rollback()
    # One reader of report CSVs (fleet.report.read_report): every needed column checked up front.
    for rec in read_report(report, NEEDS).lines:
        domain, status, target = rec["domain"], rec["status"], rec["certificate_arn"]
        if status in NEVER_OURS:
            continue  # never written by the tool (held: already kept on its previous certificate)
        moved_from = state.original(domain, target) if state is not None else None
        if status not in written and moved_from is None:
            continue  # failed or skipped before any write: nothing to undo
        previous = moved_from or rec["previous_certificate_arn"]
        if not previous:
            out.missed.append(f"{domain} ({status}): no previous certificate in the report or the state")
            continue
        if previous == target:
            continue
        role, external = roles.get(domain, ("", ""))
        # rollback_from: returning to the certificate the tool moved it from is not refused for
        # expiring within --min-validity-days (see fleet/migrate/row.py _preflight).
        out.rows.append(
            Row(
                0,
                rec["account_id"],
                rec["region"],
                rec["user_pool_id"],
                domain,
                previous,
                role or None,
                external or None,
                rollback_from=target,
            )
        )
        out.by_status[status] += 1
    return out


def write_rollback_manifest(
    report: Path, out: Path, original: Path | None = None, state_path: Path | Checkpoint | None = None
) -> Rollback:
    """Write the rollback manifest of ``report``; with ``state_path``, hold its domains there on their previous
    certificates (after the manifest is written: no hold without a manifest). An open state (an S3 one) is used
    as given and left open."""
    mine = isinstance(state_path, Path)
    state = Checkpoint(state_path, create=False) if isinstance(state_path, Path) else state_path
    try:
        rollback = plan_rollback(report, state, original)
        if not rollback.rows:
            why = "; could not: " + "; ".join(rollback.missed) if rollback.missed else ""
            raise RollbackError(f"{report}: no domain written by the tool to roll back{why}")
        write(out, rollback.rows, roles=True)
        parse(out)  # what we write must be a manifest `run` accepts
        if state is not None:
            rollback.rollback_id = new_rollback_id()
            try:
                state.hold_domains(((r.domain, r.certificate_arn) for r in rollback.rows), rollback.rollback_id, who())
            except Exception:
                out.unlink(missing_ok=True)  # nothing half-done: no manifest without its holds
                raise
        return rollback
    finally:
        if state is not None and mine:
            state.close()
