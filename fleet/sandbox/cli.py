"""`cognito-fleet sandbox serve|seed`: the local AWS for rehearsals (imports moto only when used)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click


def split_list(value: str) -> list[str]:
    """'us-east-1, eu-west-1' -> ['us-east-1', 'eu-west-1'] (the comma-separated options)."""
    return [item.strip() for item in value.split(",") if item.strip()]


def _require_sandbox() -> None:
    try:
        import moto  # noqa: F401
    except ImportError:
        click.echo("error: the sandbox needs the 'sandbox' extra: pip install 'cognito-fleet[sandbox]'", err=True)
        sys.exit(2)


@click.group()
def sandbox() -> None:
    """A local AWS (moto + AWS-fidelity + faults) on 127.0.0.1."""


@sandbox.command()
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0: a free port.")
@click.option("--latency", type=float, default=0.0, show_default=True, help="Seconds added to each Cognito call.")
@click.option("--throttle-rate", type=float, default=0.0, show_default=True)
@click.option("--error-rate", type=float, default=0.0, show_default=True, help="InternalErrorException (500) rate.")
@click.option("--reset-rate", type=float, default=0.0, show_default=True, help="Connection reset rate.")
@click.option("--quotas/--no-quotas", default=False, show_default=True, help="Enforce AWS's Cognito quotas.")
@click.option(
    "--propagation-delay",
    type=float,
    default=0.0,
    show_default=True,
    help="Seconds a domain stays UPDATING after a write.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the fault dice.")
def serve(
    port: int,
    latency: float,
    throttle_rate: float,
    error_rate: float,
    reset_rate: float,
    quotas: bool,
    propagation_delay: float,
    seed: int,
) -> None:
    """Run the sandbox until interrupted; prints its endpoint. Knobs: POST /_sandbox/config, GET /_sandbox/stats."""
    _require_sandbox()
    from fleet.sandbox.server import HUB_CREDENTIALS, Sandbox
    from fleet.sandbox.state import Knobs

    knobs = Knobs(
        latency=latency,
        throttle_rate=throttle_rate,
        error_rate=error_rate,
        reset_rate=reset_rate,
        enforce_quotas=quotas,
        propagation_delay=propagation_delay,
        seed=seed,
    )
    with Sandbox(port, knobs) as box:
        click.echo(f"sandbox endpoint: {box.endpoint}", nl=True)
        click.echo("hub credentials: " + " ".join(f"{k}={v}" for k, v in HUB_CREDENTIALS.items()))
        sys.stdout.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


@sandbox.command()
@click.option("--endpoint-url", required=True, help="The sandbox endpoint (from `sandbox serve`).")
@click.option("--accounts", type=click.IntRange(1, 10000), default=4, show_default=True)
@click.option("--regions", default="us-east-1,eu-west-1", show_default=True, help="Comma-separated.")
@click.option(
    "--domains-per-account",
    type=click.IntRange(1, 4),
    default=2,
    show_default=True,
    help="Custom domains per account and region (AWS allows 4).",
)
@click.option("--first-account", type=int, default=200000000000, show_default=True)
@click.option(
    "--organization",
    is_flag=True,
    help="Create the accounts as members of the hub's AWS Organization (moto picks their ids).",
)
@click.option(
    "--expiring-share",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of accounts whose OLD certificates expire in 10 days (for discover --auto).",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Manifest to write.")
def seed(
    endpoint_url: str,
    accounts: int,
    regions: str,
    domains_per_account: int,
    first_account: int,
    organization: bool,
    expiring_share: float,
    out: Path,
) -> None:
    """Create a fleet (pools, custom domains on an OLD cert, a NEW cert each) and write its manifest."""
    _require_sandbox()
    from fleet.sandbox.seed import account_ids, organization_accounts, seed_accounts, write_manifest

    region_list = split_list(regions)
    ids = organization_accounts(endpoint_url, accounts)[0] if organization else account_ids(accounts, first_account)
    expiring = round(len(ids) * expiring_share)
    domains = seed_accounts(endpoint_url, ids[:expiring], region_list, domains_per_account, old_days=10)
    domains += seed_accounts(endpoint_url, ids[expiring:], region_list, domains_per_account)
    write_manifest(domains, out)
    click.echo(f"seeded {len(domains)} domains in {accounts} accounts x {len(region_list)} regions: {out}")
