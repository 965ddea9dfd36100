"""Rollback: a manifest that puts every domain the tool wrote back on the certificate it had, and a hold in the
forward state so that the next forward (cron) run does not undo it.

Which domains: every report row the tool wrote, whatever its final status: ``updated``/``pending``/``verified``,
and any other (``failed`` after a write, e.g. ``DomainFailed`` or ``CertificateChanged``; ``skipped`` while its
write was in flight) for which the state holds the tool's in-flight mark of a write to that target (``moves``);
``--domain``/``--account`` keep part of them.

Which state: ``--state``, else the one the report's run record names (``NAME.report.run.json``: the run's
``--checkpoint``, wherever it was), else the state named like the report (``prod.report.csv`` ->
``prod.checkpoint.sqlite``, ``r.csv`` -> ``r.checkpoint.sqlite``) or like ``--manifest``; one found by name must
know the report's run. The rollback record beside the manifest it writes (``undo.csv`` -> ``undo.rollback.json``)
names that state: the manifest's run records into it (``rollback_state``), so the forward state's history and
``written_by_run`` tell the whole story: the forward write, the hold, the rollback's write, the release.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from fleet.errors import FleetError
from fleet.files import atomic_writer
from fleet.manifest import ManifestError, Row, parse, write
from fleet.outcome import WRITTEN, Status, utc_now
from fleet.records.own_files import ROLLBACK, refuse_foreign
from fleet.records.report import read_report
from fleet.records.run_file import read_run_record, state_named
from fleet.state.checkpoint import Checkpoint
from fleet.state.holds import new_rollback_id, who
from fleet.state.s3_objects import S3Location, is_s3

RECORD_FORMAT = "cognito-fleet-rollback"

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


def state_of(report: Path, original: Path | None, given: Path | None) -> Path | S3Location:
    """The forward state of ``report``: --state, else the one its run record names (an s3:// one as it is: the
    caller opens it as it opens ``--state s3://``), else the state named like the report or like --manifest that
    knows the report's run (RollbackError, naming where it looked, if none)."""
    if given is not None:
        if not given.is_file():
            raise RollbackError(f"--state {given}: no such file")
        return given
    runs = {line.get("run_id") or "" for line in read_report(report, ()).lines} - {""}
    named = state_named(read_run_record(report))
    if isinstance(named, S3Location):
        return named
    candidates = [p for p in (named,) if p is not None]
    candidates += [report.with_name(state_name(report.name))]
    if original is not None:  # as `run` names a manifest's default state
        candidates.append(Path(f"{original.with_suffix('') if original.suffix else original}.checkpoint.sqlite"))
    looked = []
    for candidate in dict.fromkeys(candidates):  # each once, in order
        if not candidate.is_file():
            looked.append(f"{candidate} (not there)")
        elif runs and not _knows(candidate, runs):
            looked.append(f"{candidate} (does not know run {', '.join(sorted(runs))})")
        else:
            return candidate
    raise RollbackError(
        f"{report}: cannot find its state (looked for {'; '.join(looked)}); name it with --state: the rollback "
        "holds its domains there, so that the next forward run does not move them forward again"
    )


def state_name(report_name: str) -> str:
    """The state named like a report, as `run` names the pair by default: prod.report.csv ->
    prod.checkpoint.sqlite (a shard's too); any other name keeps its stem: r.csv -> r.checkpoint.sqlite."""
    stem = report_name.removesuffix(".csv")
    return (stem.removesuffix(".report") or stem) + ".checkpoint.sqlite"


def rollback_of(manifest: str | Path) -> dict[str, str] | None:
    """The rollback a manifest is, from its rollback record (``rollback_id``, the record's path, ``made_at``, the
    forward ``state``); None for any other manifest. A rollback's run records it, so its history names it."""
    path = record_path(Path(manifest))
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != RECORD_FORMAT or not isinstance(doc.get("rollback_id"), str):
        return None
    made_at, state = doc.get("made_at"), doc.get("state")
    return {
        "rollback_id": doc["rollback_id"],
        "record": os.path.abspath(path),
        "made_at": made_at if isinstance(made_at, str) else "",
        "state": state if isinstance(state, str) else "",
    }


def _knows(state: Path, runs: set[str]) -> bool:
    with Checkpoint(state, create=False) as checkpoint:
        return any(checkpoint.run_info(run) is not None for run in runs)


def record_path(manifest: Path) -> Path:
    """undo.csv -> undo.rollback.json: the rollback a manifest is, and the forward state its run records into."""
    return manifest.with_suffix(".rollback.json")


def rollback_state(manifest: Path) -> Path | S3Location | None:
    """The forward state a rollback manifest's run records into (its rollback record's), None for any other
    manifest; RollbackError when the record names a state that is not there (a new one would hold nothing)."""
    try:
        doc = json.loads(record_path(manifest).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != RECORD_FORMAT or not isinstance(doc.get("state"), str):
        return None
    if is_s3(doc["state"]):  # an S3 state: looked up when the run opens it
        return S3Location.parse(doc["state"])
    state = Path(doc["state"])
    if not state.is_file():
        raise RollbackError(
            f"{record_path(manifest)}: names the forward state {state}, which is not there; give the forward "
            "state with --checkpoint (the rollback's writes belong in its history)"
        )
    return state


@dataclass(frozen=True, slots=True)
class Part:
    """``--domain``/``--account``: the part of a report to roll back (a row named by either; empty: all of it)."""

    domains: frozenset[str] = frozenset()
    accounts: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.domains or self.accounts)

    def keeps(self, rec: dict[str, str]) -> bool:
        return not self or rec["domain"] in self.domains or rec["account_id"] in self.accounts

    def check(self, report: Path, lines: Collection[dict[str, str]]) -> None:
        """RollbackError (nothing written) for a domain or account the report does not have: a typo is not a
        smaller rollback."""
        unknown = sorted(self.domains - {r["domain"] for r in lines})
        unknown += sorted(self.accounts - {r["account_id"] for r in lines})
        if unknown:
            raise RollbackError(f"{report}: not in the report: {', '.join(unknown)}; nothing rolled back")


def plan_rollback(
    report: Path, state: Checkpoint | None, original: Path | None = None, part: Part | None = None
) -> Rollback:
    """Read a report (CSV) and the state; every domain the tool wrote (of ``part``) goes back to its previous
    certificate."""
    roles: dict[str, tuple[str, str]] = {}
    if original is not None:
        try:
            for row in parse(original).rows:
                roles[row.domain] = (row.role_arn or "", row.external_id or "")
        except ManifestError as exc:
            raise RollbackError(str(exc)) from None
    written = {str(s) for s in WRITTEN}
    out = Rollback()
    part = part or Part()
    # One reader of report CSVs (fleet.records.report.read_report): every needed column checked up front.
    lines = read_report(report, NEEDS).lines
    part.check(report, lines)
    for rec in filter(part.keeps, lines):
        domain, status, target = rec["domain"], rec["status"], rec["certificate_arn"]
        moved_from = state.original(domain, target) if state is not None and status not in NEVER_OURS else None
        if status in NEVER_OURS or (status not in written and moved_from is None):
            if domain in part.domains:  # named, and nothing to undo: say so rather than pass over it
                out.missed.append(f"{domain} ({status}): not written by the tool, nothing to roll back")
            continue  # never written by the tool, or failed/skipped before any write
        previous = moved_from or rec["previous_certificate_arn"]
        if not previous:
            out.missed.append(f"{domain} ({status}): no previous certificate in the report or the state")
            continue
        if previous == target:
            continue
        role, external = roles.get(domain, ("", ""))
        # rollback_from: returning to the certificate the tool moved it from is not refused for
        # expiring within --min-validity-days (see fleet/migration/row.py _preflight).
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
    report: Path,
    out: Path,
    original: Path | None = None,
    state_path: Path | Checkpoint | None = None,
    part: Part | None = None,
) -> Rollback:
    """Write the rollback manifest of ``report`` (of ``part`` of it); with ``state_path``, its rollback record
    (naming that state) and the holds of its domains there on their previous certificates: manifest, record, holds,
    in that order (no hold without a manifest; a failed hold removes both). An open state (an S3 one) is used as
    given and left open."""
    if state_path is not None:
        refuse_foreign(record_path(out), ROLLBACK)
    owned = Checkpoint(state_path, create=False) if isinstance(state_path, Path) else None
    given = state_path if isinstance(state_path, Checkpoint) else None  # an open state (an S3 one): left open
    with owned if owned is not None else contextlib.nullcontext(given) as state:
        rollback = plan_rollback(report, state, original, part)
        if not rollback.rows:
            why = "; could not: " + "; ".join(rollback.missed) if rollback.missed else ""
            raise RollbackError(f"{report}: no domain written by the tool to roll back{why}")
        write(out, rollback.rows, roles=True)
        parse(out)  # what we write must be a manifest `run` accepts
        if state is not None and state_path is not None:
            rollback.rollback_id = new_rollback_id()
            try:
                _write_record(out, report, state_path if isinstance(state_path, Path) else state.path, rollback)
                state.hold_domains(((r.domain, r.certificate_arn) for r in rollback.rows), rollback.rollback_id, who())
            except Exception:
                out.unlink(missing_ok=True)  # nothing half-done: no manifest without its holds
                record_path(out).unlink(missing_ok=True)
                raise
        return rollback


def _write_record(manifest: Path, report: Path, state: Path | str, rollback: Rollback) -> None:
    """The rollback record beside its manifest (0600, whole): which rollback, of which report, into which state."""
    document = {
        "format": RECORD_FORMAT,
        "version": 1,
        "rollback_id": rollback.rollback_id,
        "made_at": utc_now(),
        "who": who(),
        "report": os.path.abspath(report),
        "report_sha256": hashlib.sha256(report.read_bytes()).hexdigest(),
        "state": str(state) if str(state).startswith("s3://") else os.path.abspath(state),
        "manifest": os.path.abspath(manifest),
        "domains": [r.domain for r in rollback.rows],
    }
    with atomic_writer(record_path(manifest)) as fh:
        json.dump(document, fh, indent=1)
        fh.write("\n")
