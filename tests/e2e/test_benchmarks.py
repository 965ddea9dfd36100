"""The benchmark runs end to end on a tiny fleet (speed targets live in benchmarks/README.md, not here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_runs_on_a_tiny_fleet(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--accounts",
            "2",
            "--regions",
            "us-east-1",
            "--domains",
            "1",
            "--latency",
            "0.01",
            "--sequential-accounts",
            "1",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = {r["tool"]: r for r in json.loads(out.read_text())}
    assert set(results) == {"cognito-fleet", "boto3-threads-20", "boto3-sequential"}
    for r in results.values():
        assert r["failed"] == 0 and r["rows"] == 2 and r["calls"] >= 2 * 3 + 2
        assert r["wall_s"] > 0 and r["cpu_s"] > 0 and r["peak_rss_mb"] > 10 and r["lower_bound_s"] > 0
    assert results["boto3-sequential"]["extrapolated_from"] == 1
    assert "| cognito-fleet |" in proc.stdout and "lower bound" in proc.stdout


def test_memory_benchmark_runs_on_a_tiny_fleet() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", "--sizes", "8"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = [line for line in proc.stdout.splitlines() if line.startswith("| 8 |")]
    assert row and row[0].rstrip().endswith("| 0 |")  # 8 domains, none failed


def test_costs_benchmark_runs_on_a_tiny_fleet(tmp_path: Path) -> None:
    out = tmp_path / "costs.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.costs", "--accounts", "3", "--calls", "5", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = json.loads(out.read_text())
    assert len(figures["new_account_ms"]) == 3 and all(ms > 0 for ms in figures["new_account_ms"])
    for operation in ("DescribeUserPoolDomain", "DescribeCertificate", "UpdateUserPoolDomain"):
        assert figures[operation]["sequential_ms"] > 0 and figures[operation]["concurrent_ms"] > 0
        assert f"| {operation} |" in proc.stdout


def test_lost_writes_benchmark_runs_on_a_tiny_fleet() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.lost_writes", "--accounts", "2", "--loss", "1.0", "--propagation", "0.1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The figures are the last thing printed, an indented JSON object from a line "{" on (log lines before it may
    # hold braces of their own, e.g. hub_identity's endpoints).
    figures = json.loads(proc.stdout[proc.stdout.rindex("\n{\n") + 1 :])
    lost = figures["lost_writes"]
    assert lost["domains"] == 8 and lost["write_answers_lost"] == 8  # every answer lost...
    assert lost["writes_per_domain_max"] == 1 and lost["on_target"] == 8  # ...and every domain written once
    unreachable = figures["unreachable_endpoint"]
    assert unreachable["exit_code"] == 2 and unreachable["left_behind"] == []


def test_s3_state_benchmark_runs_on_a_tiny_fleet(tmp_path: Path) -> None:
    out = tmp_path / "s3.json"
    args = ["--accounts", "1", "--regions", "us-east-1", "--domains", "2", "--latency", "0", "--repeat", "1"]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.s3_state", *args, "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = json.loads(out.read_text())
    assert figures["local_migrate"]["writes"] == figures["s3_migrate"]["writes"] == 2
    assert figures["local_migrate"]["s3_requests"] == 0 < figures["s3_migrate"]["s3_requests"]
    assert figures["s3_migrate"]["s3_bytes_written"] > 0 and figures["s3_converge"]["writes"] == 0
    assert "| migrate | s3 |" in proc.stdout
