"""`cognito-fleet demo`: a complete migration against the embedded sandbox, offline."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import click

from fleet.aws.credentials import AwsSettings
from fleet.aws.edge import EdgeSettings
from fleet.cli import logs
from fleet.cli.progress import Fanout, ProgressBar, summary_table
from fleet.manifest import parse
from fleet.migration.engine import EngineSettings, Observer
from fleet.migration.pipeline import RunResult, migrate, new_run_id
from fleet.migration.row import Mode
from fleet.sandbox.auth import HUB_CREDENTIALS
from fleet.sandbox.seed import seed_fleet, write_manifest
from fleet.sandbox.server import Sandbox
from fleet.sandbox.state import Knobs


def isolate_from_real_aws() -> None:
    """The demo's hub identity is the sandbox's: never read the user's real AWS configuration."""
    # A CA bundle of the user's (a corporate proxy's, say) has nothing to do with the sandbox's certificate.
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CA_BUNDLE"):
        os.environ.pop(var, None)
    os.environ.update(HUB_CREDENTIALS)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def _migrate(manifest: Path, checkpoint: Path, report: Path, endpoint: str, edge: str) -> RunResult:
    """What `cognito-fleet run MANIFEST --wait --wait-interval 0.5 --canary 1 --edge-address EDGE` does, through the
    pipeline."""
    logs.configure("auto", "warning")
    settings = EngineSettings(
        aws=AwsSettings(endpoint_url=endpoint, session_name=f"cognito-fleet-{new_run_id()}"),
        mode=Mode(wait=True, wait_interval=0.5),  # Cognito distributes a new certificate: wait for it
        canary=1,
        edge=EdgeSettings(address=edge),  # verified once the sandbox's edge serves the new certificate
    )
    parsed = parse(manifest)
    with contextlib.ExitStack() as stack:
        observer: Observer = logs.RowLogger()
        if sys.stderr.isatty():
            observer = Fanout(observer, stack.enter_context(ProgressBar(len(parsed.rows))))
        result = migrate(parsed, checkpoint, report, settings, observer)
    if sys.stderr.isatty():
        summary_table(result.counts)
    return result


def run_demo(
    workdir: Path,
    accounts: int,
    regions: Sequence[str],
    per_region: int,
    latency: float,
    throttle_rate: float,
    tls: bool = True,
) -> int:
    """Seed a fleet in a sandbox and migrate it with the real `run`; over HTTPS unless ``tls`` is False.

    Over HTTPS the sandbox serves a certificate from a throw-away CA (``workdir/tls``) that the clients trust
    through ``AWS_CA_BUNDLE``: the demo passes only if every client verifies the certificate and its name.
    """
    isolate_from_real_aws()
    workdir.mkdir(parents=True, exist_ok=True)
    files = None
    if tls:
        from fleet.sandbox.tls import make_tls_files

        files = make_tls_files(workdir / "tls")
        os.environ["AWS_CA_BUNDLE"] = str(files.ca)
    manifest = workdir / "manifest.csv"
    checkpoint, report = workdir / "checkpoint.sqlite", workdir / "report.csv"
    for stale in (checkpoint, Path(f"{checkpoint}-wal"), Path(f"{checkpoint}-shm")):
        stale.unlink(missing_ok=True)  # each demo seeds a new fleet: start a new checkpoint
    with Sandbox(knobs=Knobs(enforce_quotas=True), tls=files) as box:
        click.echo(f"sandbox: {box.endpoint} (moto + AWS-fidelity layer, loopback only)")
        if files is not None:
            click.echo(f"TLS: certificate for 127.0.0.1 from a throw-away CA, trusted via AWS_CA_BUNDLE={files.ca}")
        t0 = time.monotonic()
        domains = seed_fleet(box.endpoint, accounts, regions, per_region)
        write_manifest(domains, manifest)
        click.echo(
            f"seeded {len(domains)} custom domains in {accounts} accounts x {len(regions)} regions "
            f"({time.monotonic() - t0:.1f}s): {manifest}"
        )
        # Cognito says ACTIVE after 1 s; the edge serves the new certificate 0.5 s later.
        box.state.configure(latency=latency, throttle_rate=throttle_rate, propagation_delay=1.0, edge_lag=0.5)
        box.state.reset_counters()
        click.echo(f"edge: {box.edge_address} (TLS; presents each domain's ACM certificate by SNI)")
        t0 = time.monotonic()
        result = _migrate(manifest, checkpoint, report, box.endpoint, box.edge_address)
        elapsed = time.monotonic() - t0
        stats = box.state.stats()
        on_target = sum(box.certificate_of(d.domain) == d.new_certificate_arn for d in domains)
        at_edge = sum(box.app.edge_certificate(d.domain) == d.new_certificate_arn for d in domains)
    for line in result.lines():
        click.echo(line)
    calls = sum(stats["calls"].values())
    click.echo(
        f"migration: {elapsed:.2f}s wall, {calls} Cognito calls ({calls / max(len(domains), 1):.2f} per "
        f"domain), {stats['faults'].get('throttle', 0)} throttles injected and retried; "
        f"{on_target}/{len(domains)} domains on their new certificate and {at_edge}/{len(domains)} served it by the "
        f"edge ({stats['edge_handshakes']} handshakes; read back from the sandbox)"
    )
    return result.exit_code
