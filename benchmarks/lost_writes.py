"""Writes per domain when write answers are lost, and how fast a run refuses an endpoint it cannot reach.

    python -m benchmarks.lost_writes                      # 40 domains, half of the write answers lost
    python -m benchmarks.lost_writes --accounts 2 --loss 0.5   # a tiny smoke run

A sandbox in this process applies every UpdateUserPoolDomain and then drops the connection without an answer
with probability ``--loss`` (``write_loss_after_rate``), refuses updates while a domain distributes
(``refuse_while_updating``, as AWS does with ConcurrentModificationException), and keeps a written domain
UPDATING for ``--propagation`` seconds. The run is the real pipeline (hub check, engine, checkpoint, report).
Then ``cognito-fleet plan`` is started against a closed loopback port and timed, as a user would see it.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fleet.sandbox.demo import isolate_from_real_aws
from fleet.sandbox.seed import seed_fleet, write_manifest
from fleet.sandbox.server import Sandbox
from fleet.sandbox.state import Knobs


def lost_writes(accounts: int, loss: float, propagation: float, seed: int) -> dict[str, Any]:
    from fleet.aws.credentials import AwsSettings
    from fleet.aws.edge import EdgeSettings
    from fleet.migration.engine import EngineSettings
    from fleet.migration.pipeline import migrate

    with Sandbox(knobs=Knobs(seed=seed)) as box, tempfile.TemporaryDirectory() as tmp:
        domains = seed_fleet(box.endpoint, accounts, ("us-east-1", "eu-west-1"), 2)
        manifest = write_manifest(domains, Path(tmp) / "m.csv")
        box.state.configure(write_loss_after_rate=loss, refuse_while_updating=True, propagation_delay=propagation)
        box.state.reset_counters()
        t0 = time.monotonic()
        result = migrate(
            manifest,
            Path(tmp) / "c.sqlite",
            Path(tmp) / "r.csv",
            # The sandbox's edge: the edge check must never look up a real CloudFront host (loopback only).
            EngineSettings(aws=AwsSettings(endpoint_url=box.endpoint), edge=EdgeSettings(address=box.edge_address)),
        )
        writes = [box.state.writes[d.domain] for d in domains]
        return {
            "domains": len(domains),
            "write_answers_lost": box.state.faults["write_lost_after"],
            "writes": sum(writes),
            "writes_per_domain_min": min(writes),
            "writes_per_domain_max": max(writes),
            "describes": box.state.calls["DescribeUserPoolDomain"],
            "counts": dict(result.counts),
            "on_target": sum(box.certificate_of(d.domain) == d.new_certificate_arn for d in domains),
            "wall_s": round(time.monotonic() - t0, 2),
        }


def refuse_unreachable() -> dict[str, Any]:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "m.csv"
        manifest.write_text(
            "account_id,region,user_pool_id,domain,certificate_arn\n111122223333,eu-west-1,eu-west-1_A,"
            "a.example.com,arn:aws:acm:us-east-1:111122223333:certificate/0f2b8c3e-1a2b-4c5d-8e9f-0123456789ab\n"
        )
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "fleet", "plan", str(manifest), "--endpoint-url", url],
            capture_output=True,
            text=True,
            timeout=120,
        )
        return {
            "exit_code": proc.returncode,
            "seconds": round(time.monotonic() - t0, 2),
            "stderr": proc.stderr.strip(),
            "left_behind": sorted(p.name for p in Path(tmp).iterdir() if p.name != "m.csv"),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=10, help="accounts x 2 regions x 2 domains")
    parser.add_argument("--loss", type=float, default=0.5, help="share of write answers lost after the change")
    parser.add_argument("--propagation", type=float, default=0.3, help="seconds a written domain stays UPDATING")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    isolate_from_real_aws()
    figures = {
        "lost_writes": lost_writes(args.accounts, args.loss, args.propagation, args.seed),
        "unreachable_endpoint": refuse_unreachable(),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
