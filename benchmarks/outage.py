"""A 30 s endpoint outage in the middle of `run --wait`: rows failed, writes per domain, how long it took.

    python -m benchmarks.outage                          # 24 domains, a 30 s outage after half the writes
    python -m benchmarks.outage --mode html-503          # one shape only
    python -m benchmarks.outage --outage 12 --accounts 2 # shorter

A sandbox in this process serves HTTPS (a throw-away CA, as the tests and the demo do) with 1 s propagation;
once half of the domains have been written, the endpoint is out for ``--outage`` seconds (knob
``outage_seconds``), in each ``--mode`` in turn (knob ``outage_mode``, docs/outages.md): ``refuse`` (new
connections reset during the TLS handshake, kept ones at their next request), ``reset-after-request``,
``html-503`` (an ALB's HTML page), ``blackhole`` (no answer until the client's read timeout, 20 s by default).
The run is the real pipeline (hub check, engine, checkpoint, report) with the default retry policy and
--outage-patience; each mode gets a fresh fleet. One JSON object per mode.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from fleet.sandbox.demo import isolate_from_real_aws
from fleet.sandbox.faults import OUTAGE_MODES
from fleet.sandbox.seed import FIRST_ACCOUNT, seed_fleet, write_manifest
from fleet.sandbox.server import Sandbox
from fleet.sandbox.tls import make_tls_files

ANSWERED = ("DescribeUserPoolDomain", "UpdateUserPoolDomain", "acm:DescribeCertificate")


def outage_mid_run(accounts: int, outage: float, propagation: float, mode: str = "refuse") -> dict[str, Any]:
    from fleet.aws.credentials import AwsSettings
    from fleet.aws.edge import EdgeSettings
    from fleet.aws.outage import OutageEvent
    from fleet.migration.engine import EngineSettings, Observer
    from fleet.migration.pipeline import migrate
    from fleet.migration.row import Mode

    class Seen(Observer):
        def __init__(self) -> None:
            self.outages: list[OutageEvent] = []

        def outage(self, event: OutageEvent) -> None:
            self.outages.append(event)

    with tempfile.TemporaryDirectory() as tmp:
        files = make_tls_files(Path(tmp) / "tls")
        os.environ["AWS_CA_BUNDLE"] = str(files.ca)
        with Sandbox(tls=files) as box:
            # Each mode its own accounts: moto's backends outlive a sandbox within this process.
            first = FIRST_ACCOUNT + 1000 * OUTAGE_MODES.index(mode) * accounts
            domains = seed_fleet(box.endpoint, accounts, ("us-east-1", "eu-west-1"), 2, first_account=first)
            box.state.configure(propagation_delay=propagation)
            manifest = write_manifest(domains, Path(tmp) / "m.csv")
            box.state.reset_counters()
            cut: list[float] = []
            t0 = time.monotonic()

            def cut_mid_run() -> None:
                while time.monotonic() - t0 < 120:
                    if sum(box.state.writes.values()) >= len(domains) // 2:
                        box.state.configure(outage_mode=mode, outage_seconds=outage)
                        cut.append(time.monotonic() - t0)
                        return
                    time.sleep(0.005)

            threading.Thread(target=cut_mid_run, daemon=True).start()
            seen = Seen()
            settings = EngineSettings(
                aws=AwsSettings(endpoint_url=box.endpoint),
                mode=Mode(wait=True, wait_interval=1),
                edge=EdgeSettings(address=box.edge_address),  # the sandbox's edge: loopback only
            )
            result = migrate(manifest, Path(tmp) / "c.sqlite", Path(tmp) / "r.csv", settings, seen)
            writes = [box.state.writes[d.domain] for d in domains]
            with (Path(tmp) / "r.csv").open(newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
            errors = collections.Counter(
                f"{r['error_code']}: {r['error_message'][:120]}" for r in rows if r["error_code"]
            )
            attempts = [int(r["attempts"] or 0) for r in rows]
            return {
                "mode": mode,
                "domains": len(domains),
                "outage_s": outage,
                "outage_began_at_s": round(cut[0], 2) if cut else None,
                "exit_code": result.exit_code,
                "counts": dict(result.counts),
                "errors": dict(errors),
                "writes": sum(writes),
                "writes_per_domain_min": min(writes),
                "writes_per_domain_max": max(writes),
                "attempts_per_row_max": max(attempts),
                "attempts_total": sum(attempts),
                # The rows' calls that reached the service (the outage cuts them before it): equal to
                # attempts_total when no attempt that failed is charged to a row.
                "calls_answered": sum(box.state.calls[op] for op in ANSWERED),
                "outage_faults": {k: v for k, v in box.state.faults.items() if k.startswith("outage_")},
                "outage_events": [
                    {
                        "ended": e.ended,
                        "shape": e.shape,
                        "seconds": round(e.seconds, 1),
                        "probes": e.probes,
                        "lost": e.lost,
                    }
                    for e in seen.outages
                ],
                "on_target": sum(box.certificate_of(d.domain) == d.new_certificate_arn for d in domains),
                "wall_s": round(time.monotonic() - t0, 2),
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=6, help="accounts x 2 regions x 2 domains")
    parser.add_argument("--outage", type=float, default=30.0, help="seconds every connection is cut")
    parser.add_argument("--propagation", type=float, default=1.0, help="seconds a written domain stays UPDATING")
    parser.add_argument(
        "--mode",
        action="append",
        choices=OUTAGE_MODES,
        help="the outage's shape (repeatable; default: each of them in turn)",
    )
    args = parser.parse_args()
    isolate_from_real_aws()
    for mode in args.mode or OUTAGE_MODES:
        print(json.dumps(outage_mid_run(args.accounts, args.outage, args.propagation, mode), indent=2), flush=True)


if __name__ == "__main__":
    main()
