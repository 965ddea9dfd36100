"""What a person at a terminal sees: the progress bar's counts, the summary's breakdown, the sandbox's knobs."""

from __future__ import annotations

import collections
import dataclasses
import io

from click.testing import CliRunner
from rich.console import Console

from fleet.aws.retry import Failure
from fleet.cli import main
from fleet.cli.progress import ProgressBar, summary_table
from fleet.manifest import Row
from fleet.outcome import Outcome, Status
from fleet.sandbox.state import Knobs

ROW = Row(2, "111122223333", "eu-west-1", "eu-west-1_A", "a.example.com", "arn")


def test_progress_counts_the_statuses_a_run_produces_and_throttles() -> None:
    out = io.StringIO()
    bar = ProgressBar(4, Console(file=out, force_terminal=False, width=200))
    for status in (Status.PENDING, Status.VERIFIED, Status.VERIFIED, Status.FAILED):
        bar.row_done(ROW, Outcome("a.example.com", status, "arn"), 0.1)
    bar.retry(ROW, Failure("TooManyRequestsException", "slow down", retryable=True, throttled=True), 0.5)
    detail = bar._progress.tasks[0].fields["detail"]
    assert "pending 1" in detail and "verified 2" in detail and "failed 1" in detail and "throttled 1" in detail
    assert "updated" not in detail and "planned" not in detail  # a run never produces them
    planning = ProgressBar(1, Console(file=io.StringIO()), plan=True)
    planning.row_done(ROW, Outcome("a.example.com", Status.PLANNED, "arn"), 0.1)
    assert "planned 1" in planning._progress.tasks[0].fields["detail"]


def test_summary_breaks_failures_down_by_code_and_account() -> None:
    out = io.StringIO()
    counts = collections.Counter({"pending": 3, "failed": 2})
    by_code = collections.Counter({"AccessDenied": 1, "CertificateNotFound": 1})
    by_account = collections.Counter({"111122223333": 2})
    summary_table(counts, by_code, by_account, Console(file=out, width=120))
    text = out.getvalue()
    assert "failures by error code" in text and "CertificateNotFound" in text
    assert "failures by account" in text and "111122223333" in text and "total" in text


def test_sandbox_serve_help_lists_every_knob() -> None:
    result = CliRunner().invoke(main, ["sandbox", "serve", "--help"])
    assert result.exit_code == 0
    for knob in dataclasses.fields(Knobs):
        assert f"  {knob.name} " in result.output, knob.name
