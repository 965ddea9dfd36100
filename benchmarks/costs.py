"""Client CPU per new account and per API call, measured in a process of its own.

    python -m benchmarks.costs                 # 40 new accounts, 200 calls of each operation
    python -m benchmarks.costs --accounts 5 --calls 20   # a tiny smoke run

The sandbox runs in this process (no latency, no quotas); the measuring client runs in a child process, so
its ``time.process_time()`` holds only the client's CPU (all its threads), never the sandbox's. The child
uses the engine's own parts (Hub, AccountSession, shared clients):

- per new account: AssumeRole + the account's client views + its first call (DescribeUserPoolDomain), as
  the issue defines it, for each of N accounts never seen before;
- per call, steady state: DescribeUserPoolDomain, acm:DescribeCertificate and UpdateUserPoolDomain, one
  after another (``sequential``) and 32 at a time (``concurrent``); the least of 3 repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fleet.sandbox.demo import isolate_from_real_aws
from fleet.sandbox.seed import SeededDomain
from fleet.sandbox.server import Sandbox


async def _measure(endpoint: str, domains: list[dict[str, str]], calls: int) -> dict[str, Any]:

    from fleet.aws.calls import Calls
    from fleet.aws.credentials import AwsSettings, Hub, role_arn_for
    from fleet.aws.limits import Limits
    from fleet.aws.retry import BackoffPolicy

    settings = AwsSettings(endpoint_url=endpoint)
    out: dict[str, Any] = {}
    async with Hub(settings, Calls(Limits(None, 5.0), BackoffPolicy())) as hub:
        warm, *fresh = domains  # the first account pays the one-time costs (models, shared clients)
        for d in [warm, *fresh]:
            t0 = time.process_time()
            session = await hub.assume(d["account_id"], role_arn_for(d["account_id"], settings, None), None)
            cognito = await session.client("cognito-idp", d["region"])
            await cognito.describe_user_pool_domain(Domain=d["domain"])
            cost = time.process_time() - t0
            if d is warm:
                out["first_account_ms"] = cost * 1000
            else:
                out.setdefault("new_account_ms", []).append(cost * 1000)
        d = warm
        session = await hub.assume(d["account_id"], role_arn_for(d["account_id"], settings, None), None)
        cognito = await session.client("cognito-idp", d["region"])
        acm = await session.client("acm", "us-east-1")
        operations = {
            "DescribeUserPoolDomain": lambda: cognito.describe_user_pool_domain(Domain=d["domain"]),
            "DescribeCertificate": lambda: acm.describe_certificate(CertificateArn=d["new_certificate_arn"]),
            "UpdateUserPoolDomain": lambda: cognito.update_user_pool_domain(
                Domain=d["domain"],
                UserPoolId=d["user_pool_id"],
                CustomDomainConfig={"CertificateArn": d["new_certificate_arn"]},
            ),
        }
        for name, call in operations.items():
            await call()  # warm: the operation's model and handlers
            sequential, concurrent = [], []
            for _ in range(REPEATS):
                t0 = time.process_time()
                for _ in range(calls):
                    await call()
                sequential.append((time.process_time() - t0) / calls * 1000)
                t0 = time.process_time()
                for start in range(0, calls, 32):
                    await asyncio.gather(*(call() for _ in range(min(32, calls - start))))
                concurrent.append((time.process_time() - t0) / calls * 1000)
            # The least of the repeats, as timeit reports: the others include interference (GC, other work).
            out[name] = {"sequential_ms": min(sequential), "concurrent_ms": min(concurrent)}
    return out


REPEATS = 3


def child(argv: list[str]) -> int:
    endpoint, manifest, calls = argv[0], argv[1], int(argv[2])
    domains = json.loads(Path(manifest).read_text())
    print(json.dumps(asyncio.run(_measure(endpoint, domains, calls))))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.costs", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=40, help="new accounts to measure (plus one warm-up)")
    parser.add_argument("--calls", type=int, default=200, help="calls of each operation")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    isolate_from_real_aws()
    from benchmarks.memory import seed_direct

    with Sandbox() as box, tempfile.TemporaryDirectory() as work:
        # seed_direct gives each account 4 domains: the first of each account is enough here
        seeded: list[SeededDomain] = seed_direct(box, args.accounts + 1, 600000000000)
        chosen = list({d.account_id: d for d in reversed(seeded)}.values())[::-1]
        manifest = Path(work) / "domains.json"
        manifest.write_text(json.dumps([asdict(d) for d in chosen]))
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.costs", "--child", box.endpoint, str(manifest), str(args.calls)],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return 1
    figures = json.loads(proc.stdout)
    per_account = figures.pop("new_account_ms")
    print(f"first account (one-time: service models, shared clients): {figures.pop('first_account_ms'):.1f} ms CPU")
    print(
        f"new account (AssumeRole + clients + first call), {len(per_account)} accounts: "
        f"median {statistics.median(per_account):.2f} ms, max {max(per_account):.2f} ms CPU"
    )
    print("| operation | sequential ms CPU/call | 32 concurrent ms CPU/call |")
    print("|---|---|---|")
    for name, f in figures.items():
        print(f"| {name} | {f['sequential_ms']:.2f} | {f['concurrent_ms']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(figures | {"new_account_ms": per_account}, indent=2))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.exit(child(sys.argv[2:]))
    sys.exit(main())
