"""manifest -> checkpoint -> engine -> report: the whole job, as `run` and `demo` execute it."""

from __future__ import annotations

import collections
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio

from fleet.checkpoint import Checkpoint
from fleet.engine import EngineSettings, Observer, run_rows
from fleet.manifest import parse
from fleet.outcome import DONE
from fleet.report import jsonl_path, write_report

EXIT_OK, EXIT_FAILED_ROWS, EXIT_USAGE = 0, 1, 2


def default_paths(manifest: str | Path) -> tuple[Path, Path]:
    """Checkpoint and report live beside the manifest: prod.csv -> prod.checkpoint.sqlite, prod.report.csv."""
    m = Path(manifest)
    stem = m.with_suffix("") if m.suffix else m
    return Path(f"{stem}.checkpoint.sqlite"), Path(f"{stem}.report.csv")


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class RunResult:
    counts: collections.Counter[str]
    report: Path
    report_jsonl: Path
    checkpoint: Path

    @property
    def exit_code(self) -> int:
        ok = sum(self.counts[str(s)] for s in DONE)
        return EXIT_OK if ok == sum(self.counts.values()) else EXIT_FAILED_ROWS


def migrate(
    manifest_path: str | Path,
    checkpoint_path: Path,
    report_path: Path,
    settings: EngineSettings,
    observer: Observer | None = None,
) -> RunResult:
    """Validate (raises ManifestError), open the checkpoint (raises CheckpointMismatch), run, report."""
    manifest = parse(manifest_path)
    checkpoint = Checkpoint(checkpoint_path, manifest.fingerprint, manifest.path)
    try:
        anyio.run(run_rows, manifest.rows, checkpoint, settings, observer)
        counts = write_report(manifest.rows, checkpoint, report_path)
    finally:
        checkpoint.close()
    return RunResult(counts, report_path, jsonl_path(report_path), checkpoint_path)
