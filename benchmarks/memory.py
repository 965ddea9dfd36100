"""Memory as the manifest grows: peak RSS of `cognito-fleet run` at 1k and 10k domains.

    python -m benchmarks.memory --sizes 1000,10000

The fleet is seeded in-process, straight into the sandbox's stores (HTTP seeding of 10k domains would take
~25 minutes): 4 custom domains per account in one region, so 10k domains are 2,500 accounts. The run uses
--account-concurrency 256 and --rate-per-account 50 so that it is bound by the sandbox, not by politeness.
moto's own cost per account (a linear scan of accounts for every ACM call) grows with the fleet: that is the
sandbox's time, not the client's memory.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.__main__ import fleet_run_command, run_measured
from fleet.sandbox.demo import isolate_from_real_aws
from fleet.sandbox.seed import SeededDomain, make_certificate, write_manifest
from fleet.sandbox.server import Sandbox

REGION = "eu-west-1"


def seed_direct(box: Sandbox, accounts: int, first: int) -> list[SeededDomain]:
    """Pools, certificates and domains written straight into moto and the fidelity layer (no HTTP)."""
    from moto.acm.models import acm_backends
    from moto.cognitoidp.models import cognitoidp_backends

    out = []
    for i in range(accounts):
        account = f"{first + i:012d}"
        acm = acm_backends[account]["us-east-1"]
        cognito = cognitoidp_backends[account][REGION]
        zone = f"{REGION}.a{account}.example.com"
        old = acm.import_certificate(*make_certificate([f"*.{zone}"]), None, None, [])
        for j in range(4):
            domain = f"auth{j}.{zone}"
            pool = cognito.create_user_pool(f"pool-{j}", {}).id
            new = acm.import_certificate(*make_certificate([domain]), None, None, [])
            with box.state.lock:
                box.app._CreateUserPoolDomain(
                    {"Domain": domain, "UserPoolId": pool, "CustomDomainConfig": {"CertificateArn": old}},
                    account,
                    REGION,
                )
            out.append(SeededDomain(account, REGION, pool, domain, old, new))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.memory", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000")
    args = parser.parse_args(argv)
    isolate_from_real_aws()
    work = Path(tempfile.mkdtemp(prefix="cognito-fleet-mem-"))
    rows = []
    with Sandbox() as box:
        first = 500000000000
        for size in (int(s) for s in args.sizes.split(",")):
            t0 = time.monotonic()
            domains = seed_direct(box, size // 4, first)
            first += size
            manifest = write_manifest(domains, work / f"m{size}.csv")
            seeded = time.monotonic() - t0
            wall, cpu, rss = run_measured(
                fleet_run_command(manifest, box.endpoint, "--account-concurrency", "256", "--rate-per-account", "50")
            )
            failed = sum(box.certificate_of(d.domain) != d.new_certificate_arn for d in domains)
            rows.append((size, seeded, wall, cpu, rss, failed))
            print(
                f"{size} domains: seeded {seeded:.0f}s, run {wall:.0f}s wall, {cpu:.0f}s CPU, "
                f"peak RSS {rss:.0f} MB, failed {failed}",
                file=sys.stderr,
                flush=True,
            )
    print("| domains | accounts | run wall s | run CPU s | peak RSS MB | failed |")
    print("|---|---|---|---|---|---|")
    for size, _, wall, cpu, rss, failed in rows:
        print(f"| {size} | {size // 4} | {wall:.0f} | {cpu:.0f} | {rss:.0f} | {failed} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
