"""Records in S3: ``--report s3://BUCKET/PREFIX/NAME.csv`` writes the report, its JSON Lines and its run record
(and a change record: ``report --out s3://...``) to a private temporary directory first, then uploads each
whole; ``report`` and ``rollback`` read reports (with the files beside them) from S3 the same way.

The upload happens when the command ends, whatever its exit code (a stopped run's report is the one to read). A
record object is written whole (a PUT is atomic in S3), last writer wins, as a local file's rename would.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click

from fleet.aws.credentials import AwsSettings
from fleet.events import say
from fleet.migration.state_backend import store_for
from fleet.state.s3_objects import S3Location

# What a report brings along (fleet.records.report: jsonl_path, run_record_path).
_BESIDE = (".csv", ".jsonl", ".run.json")


def _stem(key: str) -> str:
    return key[: -len(".csv")] if key.endswith(".csv") else key


@contextlib.contextmanager
def staged(
    where: Path | S3Location | None, aws: AwsSettings, state: Path | S3Location | None = None
) -> Iterator[Path | None]:
    """A local path to write ``where``'s records at; for S3, a temporary one whose files are uploaded at the end
    (beside the report's key, same names). Refused (exit 2, before any AWS call) unless the key ends in .csv
    (the names beside it derive from that suffix) and lies outside ``state``'s objects (KEY, KEY.lock, journals)."""
    if not isinstance(where, S3Location):
        yield where
        return
    if not where.key.endswith(".csv"):
        raise click.BadParameter(f"{where}: a report's key must end in .csv (e.g. {where}.csv)", param_hint="--report")
    if isinstance(state, S3Location) and state.bucket == where.bucket and where.key.startswith(state.key):
        raise click.BadParameter(
            f"{where}: would overwrite or sit among the objects of the state {state}", param_hint="--report"
        )
    with tempfile.TemporaryDirectory(prefix="cognito-fleet-records-") as scratch:  # 0700
        name = where.key.rsplit("/", 1)[-1]
        local = Path(scratch) / name
        try:
            yield local
        finally:
            store = store_for(where, aws)
            stem = _stem(where.key)
            for suffix in _BESIDE:
                made = Path(scratch) / (_stem(name) + suffix)
                if made.exists():
                    store.put(stem + suffix, made.read_bytes())
                    say(f"uploaded s3://{where.bucket}/{stem}{suffix}", uploaded=f"s3://{where.bucket}/{stem}{suffix}")


@contextlib.contextmanager
def fetched(reports: tuple[Path | S3Location, ...], aws: AwsSettings) -> Iterator[tuple[Path, ...]]:
    """Local copies of ``reports`` (an S3 one with its JSON Lines and run record, when they exist)."""
    with tempfile.TemporaryDirectory(prefix="cognito-fleet-reports-") as scratch:
        out = []
        for n, where in enumerate(reports):
            if not isinstance(where, S3Location):
                out.append(where)
                continue
            store, stem = store_for(where, aws), _stem(where.key)
            folder = Path(scratch) / str(n)
            folder.mkdir()
            name = _stem(where.key.rsplit("/", 1)[-1])
            for suffix in _BESIDE:
                found = store.get(stem + suffix)
                if found is None and suffix == ".csv":
                    raise click.BadParameter(f"{where}: no such object", param_hint="REPORT")
                if found is not None:
                    (folder / (name + suffix)).write_bytes(found.body)
            out.append(folder / (name + ".csv"))
        yield tuple(out)
