"""The per-domain report: every manifest row, in manifest order, as CSV and JSON Lines.

Both files are written to a temporary file beside the target and renamed into place, so a reader
(or a kill) never sees half a report.
"""

from __future__ import annotations

import collections
import csv
import json
from collections.abc import Iterable
from pathlib import Path

from fleet.checkpoint import Checkpoint
from fleet.files import atomic_writer
from fleet.manifest import Row
from fleet.outcome import Outcome, Status

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
)


def jsonl_path(report_path: str | Path) -> Path:
    return Path(report_path).with_suffix(".jsonl")


NOT_FINISHED = "not finished: the run stopped before this row ended; the next run resumes it"


def record(row: Row, outcome: Outcome | None, skipped_reason: str | None = None) -> dict[str, object]:
    """One report line; a row without a final outcome is 'skipped'."""
    if outcome is None or outcome.status is Status.IN_FLIGHT:
        outcome = Outcome(
            domain=row.domain,
            status=Status.SKIPPED,
            certificate_arn=row.certificate_arn,
            previous_certificate_arn=outcome.previous_certificate_arn if outcome else None,
            attempts=outcome.attempts if outcome else 0,
            error_message=f"not attempted: {skipped_reason}" if skipped_reason else NOT_FINISHED,
        )
    values = outcome.as_dict()
    values.update(account_id=row.account_id, region=row.region, user_pool_id=row.user_pool_id)
    return {c: values.get(c) for c in COLUMNS}


def write_report(
    rows: Iterable[Row], checkpoint: Checkpoint, path: str | Path, skipped_reason: str | None = None
) -> collections.Counter[str]:
    """Write CSV and JSONL for every row; return the count of rows by status."""
    counts: collections.Counter[str] = collections.Counter()
    csv_path = Path(path)
    with atomic_writer(csv_path) as csv_fh, atomic_writer(jsonl_path(csv_path)) as json_fh:
        writer = csv.DictWriter(csv_fh, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            line = record(row, checkpoint.get(row.domain), skipped_reason)
            counts[str(line["status"])] += 1
            writer.writerow({k: "" if v is None else v for k, v in line.items()})
            json_fh.write(json.dumps(line, separators=(",", ":")) + "\n")
    return counts


def summary_line(counts: collections.Counter[str]) -> str:
    order = [str(s) for s in Status if s is not Status.IN_FLIGHT]
    parts = [f"{s}={counts[s]}" for s in order if counts[s]]
    return f"{sum(counts.values())} rows: " + (", ".join(parts) if parts else "none")
