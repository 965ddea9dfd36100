"""Local faults are named and lose nothing: a state file that cannot be written stops the run resumably (one line
naming the file, exit 75), and the resume writes every domain once with its previous certificate kept."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from fleet.cli import main
from fleet.errors import EXIT_OK, EXIT_RESUMABLE, StateWriteError, reduce_group
from fleet.migration import state_store
from fleet.state.checkpoint import Checkpoint, write_failure

from ..conftest import Fleet
from ..files import by_domain


class FillingCheckpoint(Checkpoint):
    """A state whose disk fills once ``full()`` says so: SQLite's max_page_count makes the next growth fail with
    SQLITE_FULL, as a full disk would (no root, no small file system needed)."""

    full: Callable[[], bool] = staticmethod(lambda: False)

    def _write(self, statements: list[tuple[str, tuple[object, ...]]]) -> None:
        if type(self).full():
            pages = self._db.execute("PRAGMA page_count").fetchone()[0]
            self._db.execute(f"PRAGMA max_page_count = {pages}")
        super()._write(statements)


def run_cli(fleet: Fleet, *extra: str) -> Any:
    return CliRunner().invoke(
        main,
        fleet.run_args("--yes", *extra),
    )


def test_a_full_disk_mid_run_is_one_line_exit_75_and_the_resume_writes_each_domain_once(
    make_fleet, monkeypatch
) -> None:
    fleet: Fleet = make_fleet(accounts=3, regions=("us-east-1", "eu-west-1"), per_region=2)
    monkeypatch.setattr(FillingCheckpoint, "full", staticmethod(lambda: sum(fleet.box.state.writes.values()) >= 3))
    monkeypatch.setattr(state_store, "Checkpoint", FillingCheckpoint)
    result = run_cli(fleet, "--rate-per-account", "1")  # rows one after another: the disk fills mid-run
    assert result.exit_code == EXIT_RESUMABLE, result.output
    lines = [json.loads(line) for line in result.output.splitlines() if line.strip()]
    errors = [e for e in lines if e.get("event") == "error"]
    assert len(errors) == 1, lines
    message = str(errors[0]["message"])
    assert str(fleet.checkpoint) in message and "database or disk is full" in message
    assert "free space and rerun to resume" in message
    assert "unexpected" not in result.output and "ExceptionGroup" not in result.output
    written_before = dict(fleet.box.state.writes)
    assert 0 < sum(written_before.values()) < len(fleet.domains)  # it did stop mid-run

    monkeypatch.setattr(state_store, "Checkpoint", Checkpoint)  # space freed
    again = run_cli(fleet)
    assert again.exit_code == EXIT_OK, again.output
    assert fleet.box.state.writes == {d.domain: 1 for d in fleet.domains}  # every domain written exactly once
    report = by_domain(fleet.report)
    for d in fleet.domains:
        assert fleet.box.certificate_of(d.domain) == d.new_certificate_arn
        assert report[d.domain]["previous_certificate_arn"] == d.old_certificate_arn, d.domain


def test_the_state_write_errors_are_named_by_cause(tmp_path: Path) -> None:
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
    read_only = sqlite3.OperationalError("attempt to write a readonly database")
    cases = {
        full: "database or disk is full",
        read_only: "read-only",
        sqlite3.OperationalError("disk I/O error"): "disk I/O error",
        OSError(28, "No space left on device"): "No space left on device",
    }
    for exc, cause in cases.items():
        failure = write_failure("state.sqlite", exc)
        assert failure is not None and cause in str(failure) and failure.exit_code == EXIT_RESUMABLE
    assert write_failure("state.sqlite", sqlite3.OperationalError("no such table: x")) is None  # a bug, not a disk


def test_several_echoes_of_one_error_reduce_to_it() -> None:
    one = StateWriteError("s.sqlite", "database or disk is full")
    group = BaseExceptionGroup("rows", [one, ExceptionGroup("more", [StateWriteError("s.sqlite", "x")])])
    assert reduce_group(group) is one
    assert isinstance(reduce_group(BaseExceptionGroup("rows", [ValueError(), KeyError()])), BaseExceptionGroup)
