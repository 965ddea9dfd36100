"""The run's exit code from its counts and how it stopped (fleet.migration.result.RunResult.exit_code)."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from fleet.errors import EXIT_FAILED_ROWS, EXIT_OK, EXIT_RESUMABLE
from fleet.migration.result import RunResult


def result(stopped: str | None = None, aborted: bool = False, **counts: int) -> RunResult:
    where = Path("r.csv")
    return RunResult(collections.Counter(counts), where, where, where, stopped=stopped, aborted=aborted)


@pytest.mark.parametrize(
    ("run", "code"),
    [
        (result(verified=3), EXIT_OK),
        (result(pending=3), EXIT_OK),  # no --wait: pending is the run's job done; the next run verifies
        (result("SIGTERM", verified=2, skipped=1), EXIT_RESUMABLE),
        # --wait cut short by an outage past its patience (or a signal): the rerun verifies, cron must see it
        (result("endpoint https://x unreachable since …", verified=1, pending=2), EXIT_RESUMABLE),
        (result("SIGTERM", verified=3), EXIT_OK),  # stopped, but nothing was left
        (result("failure budget exceeded", aborted=True, failed=2, skipped=1), EXIT_FAILED_ROWS),
        (result(verified=2, failed=1), EXIT_FAILED_ROWS),
    ],
)
def test_the_exit_code(run: RunResult, code: int) -> None:
    assert run.exit_code == code
