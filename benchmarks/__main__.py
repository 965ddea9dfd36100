"""Benchmark cognito-fleet against the tools users would pick instead, side by side on one sandbox fleet.

    python -m benchmarks                      # 50 accounts x 2 regions x 2 domains, 300 ms latency, AWS quotas
    python -m benchmarks --accounts 4 --latency 0.01 --sequential-accounts 2   # a tiny smoke run

Each tool runs as a subprocess against the same fleet, reset to the OLD certificates before each run; its
wall time, CPU time (user+sys) and peak RSS come from wait4(). Calls and throttles come from the sandbox's
counters, failures from reading every domain back. Prints a Markdown table (and --json writes the figures).

Lower bound (seconds) = max(latency chain, sandbox floor):
  latency chain  = L x 2: a row's chain is AssumeRole -> Describe -> DescribeCertificate -> Update, and the
                   sandbox adds L to its Cognito calls only (Describe, Update; STS and ACM answer at once);
                   rows of an account and accounts all in parallel; the quotas (15 writes/s per
                   account+region, 5/s per pool) do not bind at <= 4 domains per account+region;
  sandbox floor  = calls x the sandbox's CPU per call (moto serves one call at a time under the GIL), measured
                   as this process's CPU while each tool runs (it only serves the sandbox then), divided by
                   the tool's calls; the least over the tools is used.
Process start-up (imports) is not in the bound: every tool pays it; it is reported separately.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from fleet.sandbox.demo import isolate_from_real_aws
from fleet.sandbox.seed import SeededDomain, seed_fleet, write_manifest
from fleet.sandbox.server import Sandbox
from fleet.sandbox.state import Knobs


@dataclass
class Result:
    tool: str
    rows: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    calls: int
    throttles: int
    failed: int
    startup_cpu_s: float = 0.0  # CPU of starting the tool (imports), measured separately
    startup_wall_s: float = 0.0  # wall time of that start-up
    sandbox_cpu_s: float = 0.0  # CPU the sandbox (this process's threads) spent serving the tool's calls
    accounts: int = 0
    extrapolated_from: int | None = None  # rows actually run, when a subset was run and scaled up
    lower_bound_s: float = 0.0
    peak_sockets: int = 0  # the most sockets the tool had open at once

    @property
    def work_cpu_s(self) -> float:
        return max(self.cpu_s - self.startup_cpu_s, 0.0)

    @property
    def ratio(self) -> float:
        return self.wall_s / self.lower_bound_s if self.lower_bound_s else float("nan")

    @property
    def startup_ratio(self) -> float:
        """Wall time over the lower bound plus the start-up (the issue's "critical path + imports" bound)."""
        bound = self.lower_bound_s + self.startup_wall_s
        return self.wall_s / bound if bound else float("nan")

    @property
    def work_ratio(self) -> float:
        """Wall time without the start-up, which the lower bound leaves out, over the lower bound."""
        return (self.wall_s - self.startup_wall_s) / self.lower_bound_s if self.lower_bound_s else float("nan")


# A small launcher runs each tool: a child forked straight from this (large) process would report this
# process's pages in its peak RSS.
_LAUNCH = """
import json, os, resource, subprocess, sys, time
t0 = time.monotonic()
proc = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
sockets = 0  # the most sockets the tool had open at once, sampled every 20 ms from /proc
while proc.poll() is None:
    try:
        fds = os.listdir(f"/proc/{proc.pid}/fd")
        now = sum(os.readlink(f"/proc/{proc.pid}/fd/{fd}").startswith("socket:") for fd in fds)
        sockets = max(sockets, now)
    except OSError:
        pass
    time.sleep(0.02)
code = proc.returncode
u = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(json.dumps({"wall": time.monotonic() - t0, "cpu": u.ru_utime + u.ru_stime,
                                         "rss_mb": u.ru_maxrss / 1024, "code": code, "sockets": sockets}))
"""


def run_measured(cmd: list[str]) -> tuple[float, float, float]:
    """Run ``cmd``; return wall seconds, CPU seconds (user+sys) and peak RSS (MB) of the tool's process."""
    wall, cpu, rss, _ = run_measured_sockets(cmd)
    return wall, cpu, rss


def run_measured_sockets(cmd: list[str]) -> tuple[float, float, float, int]:
    """``run_measured``, and the most sockets the tool had open at once (sampled every 20 ms)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([sys.executable, "-c", _LAUNCH, out.name, *cmd], check=True)
        figures = json.loads(Path(out.name).read_text())
    return figures["wall"], figures["cpu"], figures["rss_mb"], int(figures["sockets"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--regions", default="us-east-1,eu-west-1")
    parser.add_argument("--domains", type=int, default=2, help="custom domains per account and region")
    parser.add_argument("--latency", type=float, default=0.3, help="seconds per Cognito call")
    parser.add_argument(
        "--latency-everywhere",
        action="store_true",
        help="the latency on every call (STS, ACM too), as from a far region: the chain is then 4 round trips",
    )
    parser.add_argument("--quotas", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--tools", default="cognito-fleet,boto3-threads-20,boto3-sequential")
    parser.add_argument(
        "--sequential-accounts",
        type=int,
        default=10,
        help="run the sequential script on this many accounts and extrapolate",
    )
    parser.add_argument("--fleet-args", default="", help="extra arguments for cognito-fleet run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    isolate_from_real_aws()
    regions = [r for r in args.regions.split(",") if r]
    work = Path(tempfile.mkdtemp(prefix="cognito-fleet-bench-"))
    with Sandbox(knobs=Knobs()) as box:
        t0 = time.monotonic()
        domains = seed_fleet(box.endpoint, args.accounts, regions, args.domains)
        print(
            f"seeded {len(domains)} domains in {args.accounts} accounts x {len(regions)} regions "
            f"({time.monotonic() - t0:.1f}s)",
            file=sys.stderr,
        )
        box.state.configure(
            latency=args.latency, latency_everywhere=args.latency_everywhere, enforce_quotas=args.quotas
        )
        results = []
        for tool in [t for t in args.tools.split(",") if t]:
            subset = domains
            if tool == "boto3-sequential":
                keep = {d.account_id for d in domains[: args.sequential_accounts * len(regions) * args.domains]}
                subset = [d for d in domains if d.account_id in keep]
            for d in domains:
                box.set_domain_certificate(d.domain, d.old_certificate_arn)
            box.state.reset_counters()
            tool_manifest = write_manifest(subset, work / f"{tool}.csv")
            results.append(run_tool(tool, box, tool_manifest, subset, work, args.fleet_args))
        # The sandbox's own CPU per call, in the real mix of calls: the least any tool made it spend.
        per_call = min(r.sandbox_cpu_s / r.calls for r in results if r.calls)
        for r in results:
            scale = len(domains) / r.rows
            if scale != 1:  # the work scales with the rows; start-up does not
                r.extrapolated_from = r.rows
                r.wall_s = r.startup_wall_s + (r.wall_s - r.startup_wall_s) * scale
                r.cpu_s = r.startup_cpu_s + r.work_cpu_s * scale
                r.calls, r.throttles = round(r.calls * scale), round(r.throttles * scale)
                r.rows, r.accounts = len(domains), args.accounts
            calls = len(domains) * 3 + args.accounts
            # The chain: Describe and Update (Cognito); with --latency-everywhere also the hub check and AssumeRole
            # (Describe and the certificate check go at once). The client's own work CPU cannot be beaten either.
            chain = args.latency * (4 if args.latency_everywhere else 2)
            r.lower_bound_s = max(chain, calls * per_call, r.work_cpu_s)
    print(table(results, args, len(domains), per_call))
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    asdict(r) | {"ratio": r.ratio, "work_ratio": r.work_ratio, "startup_ratio": r.startup_ratio}
                    for r in results
                ],
                indent=2,
            )
        )
    return 0 if all(r.failed == 0 for r in results) else 1


def fleet_run_command(manifest: Path, endpoint: str, *extra: str) -> list[str]:
    """`cognito-fleet run` as the benchmarks start it: quiet, no progress bar."""
    return [sys.executable, "-m", "fleet", "run", str(manifest), "--endpoint-url", endpoint, "--no-progress",
            "--log-level", "warning", *extra]  # fmt: skip


def run_tool(
    tool: str, box: Sandbox, manifest: Path, subset: list[SeededDomain], work: Path, fleet_args: str
) -> Result:
    starter = [sys.executable, "-c", "import boto3, benchmarks.peers"]
    if tool == "cognito-fleet":
        # What a run imports (the CLI defers the AWS stack until it is first used, so `--version` is less).
        starter = [sys.executable, "-c", "import fleet.cli, fleet.http, fleet.engine, aioboto3"]
        cmd = fleet_run_command(
            manifest,
            box.endpoint,
            "--checkpoint",
            str(work / "fleet.checkpoint.sqlite"),
            "--report",
            str(work / "fleet.report.csv"),
            "--edge-address",  # the sandbox's edge: what `--wait` proves its rows against
            box.edge_address,
            *fleet_args.split(),
        )
        (work / "fleet.checkpoint.sqlite").unlink(missing_ok=True)
    elif tool.startswith("boto3-threads-"):
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.peers",
            "threads",
            str(manifest),
            box.endpoint,
            "--workers",
            tool.rsplit("-", 1)[1],
        ]
    elif tool == "boto3-sequential":
        cmd = [sys.executable, "-m", "benchmarks.peers", "sequential", str(manifest), box.endpoint]
    else:
        raise SystemExit(f"unknown tool {tool!r}")
    startup_wall, startup_cpu, _ = run_measured(starter)
    sandbox_t0 = time.process_time()  # this process only serves the sandbox while the tool runs
    wall, cpu, rss, sockets = run_measured_sockets(cmd)
    sandbox_cpu = time.process_time() - sandbox_t0
    stats = box.state.stats()
    failed = sum(box.certificate_of(d.domain) != d.new_certificate_arn for d in subset)
    return Result(
        tool=tool,
        rows=len(subset),
        wall_s=wall,
        cpu_s=cpu,
        peak_rss_mb=rss,
        calls=sum(stats["calls"].values()) + sum(stats["assume_role_calls"].values()),
        throttles=stats["faults"].get("quota", 0) + stats["faults"].get("throttle", 0),
        failed=failed,
        startup_cpu_s=startup_cpu,
        startup_wall_s=startup_wall,
        sandbox_cpu_s=sandbox_cpu,
        accounts=len({d.account_id for d in subset}),
        peak_sockets=sockets,
    )


def table(results: list[Result], args: argparse.Namespace, rows: int, per_call: float) -> str:
    head = (
        f"{datetime.now(UTC):%Y-%m-%d}, {platform.machine()} {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; fleet {args.accounts} accounts x {len(args.regions.split(','))} regions"
        f" x {args.domains} = {rows} domains; latency {args.latency * 1000:.0f} ms; AWS quotas "
        f"{'on' if args.quotas else 'off'}; sandbox {per_call * 1000:.1f} ms per call"
    )
    lines = [
        head,
        "",
        "| tool | wall s | x lower bound | x lower bound after start-up | x (bound + start-up) | CPU s | "
        "start-up CPU s | "
        "work CPU ms/account | work CPU ms/call | peak RSS MB | peak sockets | calls | throttled | failed | "
        "sandbox CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        note = f" (ran {r.extrapolated_from} rows, scaled)" if r.extrapolated_from else ""
        lines.append(
            f"| {r.tool}{note} | {r.wall_s:.1f} | {r.ratio:.2f} | {r.work_ratio:.2f} | {r.startup_ratio:.2f} | "
            f"{r.cpu_s:.2f} | "
            f"{r.startup_cpu_s:.2f} | "
            f"{1000 * r.work_cpu_s / max(r.accounts, 1):.1f} | {1000 * r.work_cpu_s / max(r.calls, 1):.2f} | "
            f"{r.peak_rss_mb:.0f} | {r.peak_sockets} | {r.calls} | {r.throttles} | {r.failed} | {r.sandbox_cpu_s:.2f} |"
        )
    lb = results[0].lower_bound_s if results else 0.0
    lines += ["", f"lower bound: {lb:.2f} s"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
