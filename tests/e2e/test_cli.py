"""The command line as a user runs it: the installed console script, exit codes, output."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from fleet.cli import main

from ..conftest import Fleet
from ..files import csv_rows, events, finished

CERT = "arn:aws:acm:us-east-1:111122223333:certificate/0f2b8c3e-1a2b-4c5d-8e9f-0123456789ab"


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real entry point in a subprocess (python -m fleet), as cron would start it."""
    return subprocess.run(
        [sys.executable, "-m", "fleet", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def test_validate_summary_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(
        f"account_id,region,user_pool_id,domain,certificate_arn\n"
        f"111122223333,eu-west-1,eu-west-1_A,a.example.com,{CERT}\n"
        f"111122223333,us-east-1,us-east-1_B,b.example.com,{CERT}\n"
    )
    result = CliRunner().invoke(main, ["validate", str(good)])
    assert result.exit_code == 0
    assert result.output.strip() == f"{good}: valid: 2 rows, 1 accounts, 2 regions"
    bad = tmp_path / "bad.csv"
    bad.write_text(good.read_text().replace("b.example.com", "B.example.com").replace("eu-west-1_A", "us-east-1_A"))
    result = CliRunner().invoke(main, ["validate", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:2:3: user_pool_id: " in result.output
    assert f"{bad}:3:4: domain: 'B.example.com'" in result.output
    assert "2 problem(s); nothing was called" in result.output


def test_run_with_an_invalid_manifest_calls_nothing(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    bad = tmp_path / "bad.csv"
    bad.write_text(fleet.manifest.read_text() + "123,us-east-1,us-east-1_X,x.example.com,arn\n")
    proc = cli("run", str(bad), "--endpoint-url", fleet.box.endpoint)
    assert proc.returncode == 2, proc.stderr
    assert f"{bad}:4:1: account_id:" in proc.stderr
    assert sum(fleet.box.state.calls.values()) == 0 and not fleet.box.state.assume_role_calls
    assert not (tmp_path / "bad.checkpoint.sqlite").exists()


def test_run_resume_and_another_manifest_on_the_same_state(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1", "eu-west-1"), per_region=1)
    denied = fleet.domains[0].account_id
    fleet.box.state.configure(deny_accounts={denied})
    proc = cli("run", str(fleet.manifest), "--endpoint-url", fleet.box.endpoint, "--log-format", "json")
    assert proc.returncode == 1, proc.stderr
    report = tmp_path / "manifest.report.csv"
    # Under cron every line is JSON: one run_started, a row event per row, one run_finished that sums it up.
    stream = events(proc.stdout + proc.stderr)
    started = [e for e in stream if e["event"] == "run_started"]
    assert len(started) == 1 and started[0]["command"] == "run" and started[0]["rows"] == 4
    assert str(started[0]["hub"]).startswith("arn:aws:") and started[0]["regions"] == ["eu-west-1", "us-east-1"]
    end = finished(proc.stdout + proc.stderr)
    assert end["exit_code"] == proc.returncode == 1 and end["run_id"] == started[0]["run_id"]
    assert end["counts"] == {"pending": 2, "failed": 2} and end["failures"] == {"AccessDenied": 2}
    assert end["failed_accounts"] == {denied: 2} and end["report"] == str(report)
    assert (tmp_path / "manifest.checkpoint.sqlite").exists()
    rows = [e for e in stream if e["event"] == "row"]
    assert len(rows) == 4 and all("status" in e and "attempts" in e for e in rows)
    fleet.box.state.configure(deny_accounts=set())
    proc = cli("run", str(fleet.manifest), "--endpoint-url", fleet.box.endpoint, "--log-format", "console")
    assert proc.returncode == 0, proc.stderr
    assert "4 rows: pending=2, verified=2" in proc.stdout
    assert sorted(r["status"] for r in csv_rows(report)) == ["pending"] * 2 + ["verified"] * 2
    other = tmp_path / "other.csv"
    other.write_text("".join(fleet.manifest.read_text().splitlines(keepends=True)[:2]))
    proc = cli(
        "run",
        str(other),
        "--endpoint-url",
        fleet.box.endpoint,
        "--checkpoint",
        str(tmp_path / "manifest.checkpoint.sqlite"),
        "--log-format",
        "console",
    )
    # The state is keyed by domain: another manifest runs on it, and its report lists its own row only.
    assert proc.returncode == 0, proc.stderr
    assert "1 rows: verified=1" in proc.stdout


def test_help_documents_exit_codes() -> None:
    result = CliRunner().invoke(main, ["run", "--help"])
    assert result.exit_code == 0
    table = result.output.split("Exit codes:", 1)[1]
    codes = re.findall(r"^ {2,}(\d+) +\S", table, re.MULTILINE)
    assert codes == ["0", "1", "2", "3", "75"]
    # The README's exit-code table lists the same codes.
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^\| (\d+) \|", section, re.MULTILINE) == codes
    assert "--rate-per-account" in result.output and "--checkpoint" in result.output


def test_demo_migrates_a_multi_account_multi_region_fleet(tmp_path: Path) -> None:
    proc = cli("demo", "--workdir", str(tmp_path / "demo"), "--accounts", "3", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "12 rows: verified=12" in proc.stdout
    assert "12/12 domains on their new certificate and 12/12 served it by the edge" in proc.stdout
    assert "edge: served=12" in proc.stdout  # proven at the sandbox's edge, not on Cognito's word
    # Over HTTPS with a throw-away CA: the README's first command proves TLS verification end to end.
    assert "sandbox: https://127.0.0.1:" in proc.stdout
    assert stat.S_IMODE((tmp_path / "demo" / "tls" / "server-key.pem").stat().st_mode) == 0o600
    assert "PRIVATE KEY" not in proc.stdout + proc.stderr
    rows = csv_rows(tmp_path / "demo" / "report.csv")
    assert {r["edge"] for r in rows} == {"served"}
    assert len({r["account_id"] for r in rows}) == 3 and len({r["region"] for r in rows}) == 2


def test_a_reader_that_goes_away_does_not_break_a_command(tmp_path: Path) -> None:
    # `cognito-fleet history STATE | head -1`: the pipe closes before the output is written; the command ends with
    # its own exit code and no "unexpected BrokenPipeError".
    from fleet.state.checkpoint import Checkpoint

    state = tmp_path / "s.checkpoint.sqlite"
    checkpoint = Checkpoint(state)
    for n in range(3):
        checkpoint.begin(f"run-{n}", "m.csv", 1)
        checkpoint.finish({"verified": 1}, complete=True)
    checkpoint.close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleet", "history", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader leaves before anything is written
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "BrokenPipe" not in err and "unexpected" not in err, err
