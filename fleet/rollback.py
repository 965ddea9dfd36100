"""Rollback: a manifest that puts every domain a migration wrote back on the certificate it had."""

from __future__ import annotations

from pathlib import Path

from fleet.errors import FleetError
from fleet.manifest import ManifestError, Row, parse, write
from fleet.outcome import WRITTEN
from fleet.report import read_report

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


class RollbackError(FleetError):
    """The report cannot be rolled back (not a report, nothing written by the tool, a bad --manifest)."""


def write_rollback_manifest(report: Path, out: Path, original: Path | None = None) -> int:
    """Read a report (CSV); write the rollback manifest; return how many domains it moves back."""
    roles: dict[str, tuple[str, str]] = {}
    if original is not None:
        try:
            for row in parse(original).rows:
                roles[row.domain] = (row.role_arn or "", row.external_id or "")
        except ManifestError as exc:
            raise RollbackError(str(exc)) from None
    written = {str(s) for s in WRITTEN}
    rows: list[Row] = []
    for rec in read_report(report, NEEDS).lines:
        previous = rec["previous_certificate_arn"]
        if rec["status"] in written and previous and previous != rec["certificate_arn"]:
            role, external = roles.get(rec["domain"], ("", ""))
            # rollback_from: returning to the certificate the tool moved it from is not refused for
            # expiring within --min-validity-days (see fleet/domain.py _preflight).
            rows.append(
                Row(
                    0,
                    rec["account_id"],
                    rec["region"],
                    rec["user_pool_id"],
                    rec["domain"],
                    previous,
                    role or None,
                    external or None,
                    rollback_from=rec["certificate_arn"],
                )
            )
    if not rows:
        raise RollbackError(f"{report}: no updated, pending or verified domain to roll back")
    write(out, rows, roles=True)
    parse(out)  # what we write must be a manifest `run` accepts
    return len(rows)
