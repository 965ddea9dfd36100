"""The same fleet run with a local state and with an s3:// state in the sandbox: wall time, S3 requests and
bytes written per run (docs/s3-state.md; the target: S3 within 1.2x of local).

    python -m benchmarks.s3_state                       # 1,000 domains, 50 ms per call (S3 too)
    python -m benchmarks.s3_state --accounts 2 --domains 1 --latency 0   # a smoke run

One sandbox in this process (moto + the fidelity layer: signatures, IAM, S3's conditional writes). Each state
gets two runs of the real CLI (a subprocess, as cron starts it): *migrate* (every domain written, the state
new) and *converge* (the next run: every domain described, nothing written). Every domain is put back on its old
certificate between the two states. Rounds alternate local and S3 (a shared machine's load drifts): medians.
S3 requests and bytes are the sandbox's counters (requests it served, bodies it received by PUT).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fleet.sandbox.demo import isolate_from_real_aws
from fleet.sandbox.s3 import STATE_BUCKET, STATE_PREFIX
from fleet.sandbox.seed import create_bucket, seed_fleet, write_manifest
from fleet.sandbox.server import Sandbox
from fleet.sandbox.state import Knobs


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(box: Sandbox, manifest: Path, state: str, report: Path) -> dict[str, Any]:
    box.state.reset_counters()
    args = [sys.executable, "-m", "fleet", "run", str(manifest), "--endpoint-url", box.endpoint]
    args += ["--checkpoint", state, "--report", str(report), "--log-format", "json", "--no-progress"]
    args += ["--edge-address", box.edge_address]
    t0, cpu0, served0 = time.monotonic(), _children_cpu(), time.process_time()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=1800, env=os.environ.copy())
    wall = time.monotonic() - t0
    cpu, served = _children_cpu() - cpu0, time.process_time() - served0
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    calls = box.state.calls
    s3 = {k: v for k, v in calls.items() if k.startswith("s3:") and k != "s3:bytes_written"}
    return {
        "wall_s": round(wall, 2),
        "tool_cpu_s": round(cpu, 2),  # the run's process (user + sys)
        "sandbox_cpu_s": round(served, 2),  # this process meanwhile: the sandbox serving the run
        "writes": sum(box.state.writes.values()),
        "s3_requests": sum(s3.values()),
        "s3_by_kind": dict(sorted(s3.items())),
        "s3_bytes_written": calls["s3:bytes_written"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=250)
    parser.add_argument("--regions", default="us-east-1,eu-west-1")
    parser.add_argument("--domains", type=int, default=2, help="per account and region")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per call, S3's included")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (local and S3 alternate); medians reported")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    isolate_from_real_aws()
    results: dict[str, Any] = {"latency_s": args.latency, "repeat": args.repeat}
    rounds: dict[str, list[dict[str, Any]]] = {}
    with Sandbox(knobs=Knobs()) as box, tempfile.TemporaryDirectory() as tmp:
        domains = seed_fleet(box.endpoint, args.accounts, tuple(args.regions.split(",")), args.domains)
        create_bucket(box.endpoint, STATE_BUCKET)
        box.state.configure(latency=args.latency, latency_everywhere=True)
        manifest = write_manifest(domains, Path(tmp) / "m.csv")
        results["domains"] = len(domains)
        for n in range(args.repeat):
            names = ("local", "s3") if n % 2 == 0 else ("s3", "local")  # alternate: the machine's load drifts
            for name in names:
                # A new state each round; every domain back on its old certificate.
                state = str(Path(tmp) / f"state-{n}.sqlite")
                if name == "s3":
                    state = f"s3://{STATE_BUCKET}/{STATE_PREFIX}bench-{n}/state.sqlite"
                for domain in domains:
                    box.set_domain_certificate(domain.domain, domain.old_certificate_arn)
                for kind in ("migrate", "converge"):
                    measured = one_run(box, manifest, state, Path(tmp) / f"{name}.csv")
                    rounds.setdefault(f"{name}_{kind}", []).append(measured)
                    print(n, name, kind, measured, flush=True)
    for key, measured in rounds.items():
        results[key] = {
            **measured[0],
            **{k: statistics.median(m[k] for m in measured) for k in ("wall_s", "tool_cpu_s", "sandbox_cpu_s")},
        }
        results[key]["wall_s_each"] = [m["wall_s"] for m in measured]
    results["load_average"] = os.getloadavg()
    for kind in ("migrate", "converge"):
        results[f"ratio_{kind}"] = round(results[f"s3_{kind}"]["wall_s"] / results[f"local_{kind}"]["wall_s"], 3)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def table(r: dict[str, Any]) -> str:
    lines = [
        f"{r['domains']} domains, {r['latency_s'] * 1000:.0f} ms per call (S3 included), "
        f"median of {r['repeat']} rounds",
        "",
        "| run | state | wall s (median) | each round | x local | tool CPU s | sandbox CPU s | writes | S3 requests "
        "| S3 bytes written |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind in ("migrate", "converge"):
        for name in ("local", "s3"):
            x = r[f"{name}_{kind}"]
            ratio = f"{r[f'ratio_{kind}']:.2f}" if name == "s3" else "1.00"
            lines.append(
                f"| {kind} | {name} | {x['wall_s']:.2f} | {', '.join(map(str, x['wall_s_each']))} | {ratio} | "
                f"{x['tool_cpu_s']:.2f} | {x['sandbox_cpu_s']:.2f} | {x['writes']} | {x['s3_requests']} | "
                f"{x['s3_bytes_written']:,} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
