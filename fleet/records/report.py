"""The per-domain report: every manifest row, in manifest order, as CSV and JSON Lines.

Both files are written to a temporary file beside the target and renamed into place, so a reader
(or a kill) never sees half a report; never over a file the tool did not write (``fleet.records.own_files``).
"""

from __future__ import annotations

import collections
import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fleet.csv_cells import neutralise, restore
from fleet.errors import FleetError
from fleet.files import atomic_writer
from fleet.manifest import Row
from fleet.outcome import WRITTEN, Edge, Outcome, Status, reason_kind
from fleet.records.own_files import REPORT, REPORT_JSONL, RUN_RECORD, OverwriteRefused, refuse_foreign
from fleet.state.checkpoint import Checkpoint, Stored

COLUMNS = (
    "account_id",
    "region",
    "user_pool_id",
    "domain",
    "previous_certificate_arn",
    "certificate_arn",
    "status",
    "cloudfront_domain",
    "attempts",
    "error_code",
    "error_message",
    "started_at",
    "finished_at",
    "drift",
    "edge",
    "edge_not_after",
    "run_id",  # the run this report is of
    "written_by_run",  # the run whose write put the domain on its target (empty: the tool never wrote it)
    "written_at",  # when that write was answered (from the state, not this run's clock)
)


def jsonl_path(report_path: str | Path) -> Path:
    return Path(report_path).with_suffix(".jsonl")


def run_record_path(report_path: str | Path) -> Path:
    """prod.report.csv -> prod.report.run.json: the run a report is of (who, where, with what, its writes)."""
    return Path(report_path).with_suffix(".run.json")


def check_report_paths(report_path: Path, run_record: bool = True) -> None:
    """Before a command starts: the report, its JSON Lines and (``run_record``) its run record may be written
    where they go (absent, empty, or the tool's own); OverwriteRefused (exit 2, naming the file) otherwise."""
    siblings = [(report_path, REPORT), (jsonl_path(report_path), REPORT_JSONL)]
    if run_record:
        siblings.append((run_record_path(report_path), RUN_RECORD))
    if len({p for p, _ in siblings}) < len(siblings):
        raise OverwriteRefused(f"{report_path}: a report is a .csv (its JSON Lines and run record go beside it)")
    for path, kind in siblings:
        refuse_foreign(path, kind)


NOT_FINISHED = "not finished: the run stopped before this row ended; the next run resumes it"


def record(
    row: Row,
    stored: Stored | None,
    current_pass: int,
    original: str | None,
    skipped_reason: str | None = None,
    run_id: str | None = None,
    last_write: tuple[str, str] | None = None,
) -> dict[str, object]:
    """One report line. Only an outcome of this pass for this target counts; anything else is 'skipped'. A
    domain the tool moved names, as previous, the certificate it had before the tool moved it to this target,
    and (``last_write``) which run's write put it there, and when."""
    outcome = stored.outcome if stored else None
    if outcome is not None and outcome.certificate_arn != row.certificate_arn:
        outcome = None  # an outcome for another target: nothing yet for this one
    ours = outcome if outcome is not None and stored is not None and stored.pass_ == current_pass else None
    if ours is None or ours.status is Status.IN_FLIGHT:
        ours = Outcome(
            domain=row.domain,
            status=Status.SKIPPED,
            certificate_arn=row.certificate_arn,
            previous_certificate_arn=outcome.previous_certificate_arn if outcome else None,
            attempts=ours.attempts if ours else 0,
            error_message=f"not attempted: {skipped_reason}" if skipped_reason else NOT_FINISHED,
        )
    values = ours.as_dict()
    if original and ours.status is not Status.UNCHANGED:
        values["previous_certificate_arn"] = original
    values.update(account_id=row.account_id, region=row.region, user_pool_id=row.user_pool_id, drift=ours.drift)
    values["run_id"] = run_id
    on_target = ours.status in WRITTEN or (ours.status is Status.FAILED and ours.written_at)
    values["written_by_run"], values["written_at"] = last_write if last_write and on_target else (None, None)
    return {c: values.get(c) for c in COLUMNS}


@dataclass(slots=True)
class EdgeTally:
    """The report's edge column, counted: rows by edge value, and unreachable edges by kind of reason."""

    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    unreachable: collections.Counter[str] = field(default_factory=collections.Counter)

    def add(self, line: dict[str, object]) -> None:
        if line.get("edge"):
            self.counts[str(line["edge"])] += 1
        if line.get("edge") == Edge.UNREACHABLE:
            self.unreachable[reason_kind(str(line.get("error_message") or ""))] += 1


def write_report(
    rows: Iterable[Row],
    checkpoint: Checkpoint,
    path: str | Path,
    skipped_reason: str | None = None,
    edges: EdgeTally | None = None,
) -> collections.Counter[str]:
    """Write CSV and JSONL for every row; return the count of rows by status (``edges`` counts the edge column)."""
    counts: collections.Counter[str] = collections.Counter()

    def lines() -> Iterator[dict[str, object]]:
        for row in rows:
            stored = checkpoint.stored(row.domain)
            original = checkpoint.original(row.domain, row.certificate_arn)
            write = checkpoint.last_write(row.domain, row.certificate_arn)
            line = record(row, stored, checkpoint.pass_, original, skipped_reason, checkpoint.run_id, write)
            counts[str(line["status"])] += 1
            if edges is not None:
                edges.add(line)
            yield line

    write_lines(Path(path), lines())
    return counts


def write_lines(path: Path, lines: Iterable[dict[str, object]]) -> None:
    """Report lines as CSV (booleans as yes/empty) and JSON Lines beside it, each file whole or not at all."""
    check_report_paths(path, run_record=False)
    with atomic_writer(path) as csv_fh, atomic_writer(jsonl_path(path)) as json_fh:
        writer = csv.DictWriter(csv_fh, fieldnames=COLUMNS)
        writer.writeheader()
        for line in lines:
            writer.writerow({k: "" if v is None else _cell(v) for k, v in line.items()})
            json_fh.write(json.dumps(line, separators=(",", ":")) + "\n")


def _cell(value: object) -> object:
    if isinstance(value, bool):
        return "yes" if value else ""
    return neutralise(value) if isinstance(value, str) else value  # an AWS message is never a formula


class ReportError(FleetError):
    """The file is not a report this tool wrote (or cannot be read, or lacks columns its reader needs)."""


@dataclass(frozen=True, slots=True)
class ReportFile:
    """A report CSV, read: its bytes (for a digest), its lines (cells as the tool wrote them) and where each
    line starts in the file."""

    path: Path
    data: bytes
    lines: list[dict[str, str]]
    line_numbers: list[int]


def read_report(path: Path, needs: Sequence[str]) -> ReportFile:
    """The one reader of report CSVs (rollback, the change record, the run's summary). Every column in ``needs``
    is checked up front: a report that lacks some is refused in one line naming them (ReportError, exit 2)."""
    try:
        data = path.read_bytes()
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        missing = [c for c in needs if c not in (reader.fieldnames or ())]
        if missing:
            raise ReportError(f"{path}: not a cognito-fleet report (missing columns: {', '.join(missing)})")
        lines, numbers = [], []
        for rec in reader:
            lines.append({k: restore(v) if isinstance(v, str) else "" for k, v in rec.items() if k is not None})
            numbers.append(reader.line_num)
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ReportError(f"{path}: not a cognito-fleet report (not UTF-8 text)") from None
    except csv.Error as exc:
        raise ReportError(f"{path}: not a cognito-fleet report (bad CSV: {exc})") from None
    return ReportFile(path, data, lines, numbers)


def summary_line(counts: collections.Counter[str]) -> str:
    order = [str(s) for s in Status if s is not Status.IN_FLIGHT]
    parts = [f"{s}={counts[s]}" for s in order if counts[s]]
    return f"{sum(counts.values())} rows: " + (", ".join(parts) if parts else "none")
