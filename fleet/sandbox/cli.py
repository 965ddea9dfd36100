"""`cognito-fleet sandbox serve|seed` and `cognito-fleet demo`: the local AWS for rehearsals (moto is imported
only when used). The main command group imports this module when one of these commands is named
(``fleet.cli.LAZY_COMMANDS``)."""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
import tempfile
import time
from pathlib import Path

import botocore.exceptions
import click

from fleet.cli.options import split_list
from fleet.errors import FleetError


def _require_sandbox() -> None:
    try:
        import moto  # noqa: F401
    except ImportError:
        click.echo(
            "error: the sandbox needs the 'sandbox' extra: pip install 'cognito-fleet[sandbox]' "
            "(pipx: pipx install --force 'cognito-fleet[sandbox]' or, in a clone, pipx install --force '.[sandbox]')",
            err=True,
        )
        sys.exit(2)


class SandboxUnreachable(FleetError):
    """`sandbox seed` cannot reach the sandbox: one line, exit 2."""


@click.group()
def sandbox() -> None:
    """A local AWS (moto + AWS-fidelity + faults) on 127.0.0.1."""


def _knobs_epilog() -> str:
    from fleet.sandbox.state import KNOB_HELP

    lines = ["\b", "Knobs (POST /_sandbox/config with a JSON object; GET /_sandbox/stats shows them and the counters):"]
    lines += [f"  {name:<24} {meaning}" for name, meaning in KNOB_HELP.items()]
    return "\n".join(lines)


@sandbox.command(epilog=_knobs_epilog())
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0: a free port.")
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the export lines (endpoint, edge, hub keys, CA) to this file, mode 0600, once the sandbox "
    "answers: `. FILE` in another shell.",
)
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
@click.option(
    "--edge-lag",
    type=float,
    default=0.0,
    show_default=True,
    help="Seconds the edge keeps serving a domain's previous certificate after its UPDATING time.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the fault dice.")
@click.option("--tls", is_flag=True, help="Serve HTTPS with a certificate from a new throw-away CA.")
@click.option(
    "--tls-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --tls: write the CA and certificate here (kept) instead of a temporary directory (removed).",
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Serve HTTPS with this certificate chain (PEM) instead; needs --tls-key.",
)
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Its private key (PEM).")
@click.option(
    "--bucket",
    help="Create this S3 bucket for an s3:// state (the hub may use its cognito-fleet/ prefix when the bucket is "
    "example-fleet-state: iam/state-bucket-policy.json).",
)
def serve(
    port: int,
    env_file: Path | None,
    latency: float,
    throttle_rate: float,
    error_rate: float,
    reset_rate: float,
    quotas: bool,
    propagation_delay: float,
    edge_lag: float,
    seed: int,
    tls: bool,
    tls_dir: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    bucket: str | None,
) -> None:
    """Run the sandbox until interrupted; prints its endpoint and its edge (COGNITO_FLEET_EDGE_ADDRESS, which `run`
    and `plan` read). Knobs: POST /_sandbox/config, GET /_sandbox/stats.

    With --tls it serves HTTPS for 127.0.0.1 and prints the CA certificate that clients must trust
    (`export AWS_CA_BUNDLE=...`): a rehearsal then also proves that clients verify the certificate and its name.
    """
    _require_sandbox()
    from fleet.aws.edge import EDGE_ADDRESS_ENV
    from fleet.sandbox.auth import HUB_CREDENTIALS
    from fleet.sandbox.server import Sandbox
    from fleet.sandbox.state import Knobs
    from fleet.sandbox.tls import TLSFiles, make_tls_files

    _check_tls_options(tls, tls_dir, tls_cert, tls_key)

    if env_file is not None:
        env_file.unlink(missing_ok=True)  # a file left by an earlier sandbox names a dead endpoint
    # `kill` (SIGTERM) stops it as Ctrl-C does: the throw-away CA's directory is removed either way.
    signal.signal(signal.SIGTERM, _interrupt)
    knobs = Knobs(
        latency=latency,
        throttle_rate=throttle_rate,
        error_rate=error_rate,
        reset_rate=reset_rate,
        enforce_quotas=quotas,
        propagation_delay=propagation_delay,
        edge_lag=edge_lag,
        seed=seed,
    )
    with contextlib.ExitStack() as stack:
        files = None
        if tls_cert is not None and tls_key is not None:
            files = TLSFiles(cert=tls_cert, key=tls_key)
        elif tls:
            # A temporary directory is removed on exit: the throw-away CA's server key does not outlive it.
            where = tls_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cognito-fleet-tls-")))
            files = make_tls_files(where)
        box = stack.enter_context(Sandbox(port, knobs, tls=files))
        click.echo(f"sandbox endpoint: {box.endpoint}", nl=True)
        # The sandbox checks signatures: the tool must sign with the hub's keys (sandbox-only, not secrets).
        click.echo(f"sandbox edge: {box.edge_address} (TLS: every custom domain's CloudFront edge, by SNI)")
        _make_bucket(box.endpoint, bucket)
        exports = {"SANDBOX_ENDPOINT": box.endpoint, EDGE_ADDRESS_ENV: box.edge_address, **HUB_CREDENTIALS}
        if files is not None and files.ca is not None:
            click.echo(f"CA certificate: {files.ca}")
            exports["AWS_CA_BUNDLE"] = str(files.ca)
        click.echo("paste into the shell that runs cognito-fleet (the endpoint, the edge, the hub's keys, the CA):")
        lines = [f"export {key}={shlex.quote(value)}" for key, value in exports.items()]
        for line in lines:
            click.echo(line)
        if env_file is not None:
            _write_private(env_file, "".join(f"{line}\n" for line in lines))
        if files is not None and files.ca is None:
            click.echo(f"serving {files.cert}: it must name 127.0.0.1, and clients must trust its issuer")
        sys.stdout.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


def _check_tls_options(tls: bool, tls_dir: Path | None, tls_cert: Path | None, tls_key: Path | None) -> None:
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if tls_cert is not None and (tls or tls_dir is not None):
        raise click.UsageError("--tls-cert/--tls-key serve a given certificate: not with --tls/--tls-dir")
    if tls_dir is not None and not tls:
        raise click.UsageError("--tls-dir needs --tls")


def _make_bucket(endpoint: str, bucket: str | None) -> None:
    """``--bucket``: an S3 bucket for an s3:// state."""
    if bucket:
        from fleet.sandbox.seed import create_bucket

        create_bucket(endpoint, bucket)
        click.echo(f"S3 bucket: s3://{bucket}/ (e.g. --checkpoint s3://{bucket}/cognito-fleet/prod/state.sqlite)")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _write_private(path: Path, text: str) -> None:
    """Whole or not at all, mode 0600 (it holds the sandbox's keys)."""
    from fleet.files import atomic_writer

    with atomic_writer(path) as fh:
        fh.write(text)


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
    "--ou-name",
    help="With --organization: create the accounts in a new OU of this name (its id is printed, for --ou).",
)
@click.option(
    "--expiring-share",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of accounts whose OLD certificates expire in 10 days (for discover --auto).",
)
@click.option(
    "--distrusted-share",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help='Share of accounts on certificates from a distrusted "Old CA" (replacements from "New CA" exist, valid '
    'for less time); the other accounts then sit on long-valid "Healthy CA" certificates (for reconcile --issuer).',
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Manifest to write.")
def seed(
    endpoint_url: str,
    accounts: int,
    regions: str,
    domains_per_account: int,
    first_account: int,
    organization: bool,
    ou_name: str | None,
    expiring_share: float,
    distrusted_share: float,
    out: Path,
) -> None:
    """Create a fleet (pools, custom domains on an OLD cert, a NEW cert each), wait until its domains are ACTIVE,
    and write its manifest."""
    _require_sandbox()
    if ou_name and not organization:
        raise click.UsageError("--ou-name goes with --organization")
    from fleet.sandbox.seed import (
        DISTRUSTED,
        HEALTHY,
        account_ids,
        organization_accounts,
        probe,
        seed_accounts,
        wait_active,
        write_manifest,
    )

    region_list = split_list(regions)
    try:
        probe(endpoint_url)
        parent = ""
        if organization:
            ids, parent = organization_accounts(endpoint_url, accounts, ou_name)
        else:
            ids = account_ids(accounts, first_account)
        expiring = round(len(ids) * expiring_share)
        distrusted = expiring + round(len(ids) * distrusted_share)
        rest = HEALTHY if distrusted_share else None
        domains = seed_accounts(endpoint_url, ids[:expiring], region_list, domains_per_account, old_days=10)
        domains += seed_accounts(
            endpoint_url, ids[expiring:distrusted], region_list, domains_per_account, by=DISTRUSTED
        )
        domains += seed_accounts(endpoint_url, ids[distrusted:], region_list, domains_per_account, by=rest)
        wait_active(endpoint_url, domains)  # a propagation delay creates them CREATING: return when they can be run
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.SSLError) as exc:
        raise SandboxUnreachable(
            f"cannot reach the sandbox at {endpoint_url} ({exc}); is `sandbox serve` "
            "running, and is AWS_CA_BUNDLE its CA?"
        ) from None
    write_manifest(domains, out)
    where = f" (OU {parent})" if ou_name else ""
    click.echo(f"seeded {len(domains)} domains in {accounts} accounts{where} x {len(region_list)} regions: {out}")


@click.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("cognito-fleet-demo"),
    show_default=True,
    help="Where the demo's manifest, checkpoint, report and throw-away CA go.",
)
@click.option("--accounts", type=click.IntRange(1, 500), default=6, show_default=True)
@click.option("--regions", default="us-east-1,eu-west-1", show_default=True)
@click.option(
    "--domains-per-account",
    type=click.IntRange(1, 4),
    default=2,
    show_default=True,
    help="Custom domains per account and region.",
)
@click.option("--latency", type=float, default=0.03, show_default=True, help="Sandbox latency per call (s).")
@click.option("--throttle-rate", type=float, default=0.05, show_default=True, help="Sandbox throttle rate.")
def demo(
    workdir: Path, accounts: int, regions: str, domains_per_account: int, latency: float, throttle_rate: float
) -> None:
    """Start the local sandbox (HTTPS), seed a multi-account fleet, migrate it, print the summary."""
    _require_sandbox()
    from fleet.sandbox.demo import run_demo

    sys.exit(run_demo(workdir, accounts, split_list(regions), domains_per_account, latency, throttle_rate))
