"""Command line: arguments -> settings -> pipeline; exit codes. No business logic here."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import click

from fleet import logs
from fleet.checkpoint import CheckpointMismatch
from fleet.credentials import AwsSettings
from fleet.engine import EngineSettings, Observer
from fleet.limits import DEFAULT_RATE_PER_ACCOUNT
from fleet.lock import LockHeld
from fleet.manifest import ManifestError, parse
from fleet.pipeline import EXIT_LOCKED, EXIT_USAGE, RunResult, StopPolicy, default_paths, migrate, new_run_id
from fleet.progress import Fanout, ProgressBar, summary_table
from fleet.report import summary_line
from fleet.retry import BackoffPolicy

EXIT_HELP = """\b
Exit codes:
  0   every row updated or unchanged
  1   at least one row failed (see the report)
  2   usage error, invalid manifest, or a checkpoint of another manifest
  3   another run holds this checkpoint's lock
  75  stopped early (signal or --max-runtime); rerun to resume"""


@click.group(epilog=EXIT_HELP)
@click.version_option(package_name="cognito-fleet")
def main() -> None:
    """Move Cognito user pool custom domains onto new ACM certificates, across many accounts."""


@main.command()
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
def validate(manifest: Path) -> None:
    """Check a manifest without calling AWS: list every problem, or summarise it."""
    try:
        m = parse(manifest)
    except ManifestError as exc:
        click.echo(str(exc), err=True)
        click.echo(f"{manifest}: {len(exc.problems)} problem(s); nothing was called", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"{manifest}: valid: {len(m.rows)} rows, {len(m.accounts)} accounts, {len(m.regions)} regions")


def run_options(fn: Any) -> Any:
    options = [
        click.option(
            "--checkpoint",
            type=click.Path(dir_okay=False, path_type=Path),
            help="SQLite checkpoint [default: beside the manifest, NAME.checkpoint.sqlite]",
        ),
        click.option(
            "--report",
            type=click.Path(dir_okay=False, path_type=Path),
            help="CSV report; JSON Lines go beside it [default: beside the manifest, NAME.report.csv]",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 1024),
            default=64,
            show_default=True,
            help="Calls in flight at once, over all accounts.",
        ),
        click.option(
            "--account-concurrency",
            type=click.IntRange(1, 4096),
            default=32,
            show_default=True,
            help="Accounts worked on at once (each holds its own clients).",
        ),
        click.option(
            "--rate-per-account",
            type=click.FloatRange(0.01, 100),
            default=DEFAULT_RATE_PER_ACCOUNT,
            show_default=True,
            help="Cognito calls per second per account and region (AWS's write quota is 15/s, "
            "shared with the account's own traffic).",
        ),
        click.option(
            "--max-attempts",
            type=click.IntRange(1, 50),
            default=8,
            show_default=True,
            help="Attempts per call for throttling, 5xx and connection errors.",
        ),
        click.option(
            "--role-name",
            default="CognitoFleetRole",
            show_default=True,
            help="Role assumed in each account when a row has no role_arn.",
        ),
        click.option("--external-id", help="ExternalId for AssumeRole when a row has none."),
        click.option(
            "--session-duration",
            type=click.IntRange(900, 43200),
            default=3600,
            show_default=True,
            help="Assumed-role session length in seconds (refreshed before expiry).",
        ),
        click.option("--profile", help="AWS profile of the hub (calling) identity."),
        click.option("--endpoint-url", help="Send every AWS call here (e.g. the sandbox)."),
        click.option(
            "--drain-seconds",
            type=click.FloatRange(0, 3600),
            default=20.0,
            show_default=True,
            help="After SIGTERM/SIGINT or --max-runtime: how long in-flight calls may finish.",
        ),
        click.option(
            "--max-runtime",
            type=click.FloatRange(1, None),
            help="Stop starting rows after this many seconds (then drain, exit 75).",
        ),
        click.option(
            "--progress/--no-progress",
            default=None,
            help="Progress bar and summary table [default: on a terminal only].",
        ),
        click.option(
            "--log-format",
            type=click.Choice(["auto", "json", "console"]),
            default="auto",
            show_default=True,
            help="auto: console on a terminal, JSON lines otherwise.",
        ),
        click.option(
            "--log-level",
            type=click.Choice(["debug", "info", "warning", "error"]),
            default="info",
            show_default=True,
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def engine_settings(opts: dict[str, Any]) -> EngineSettings:
    run_id = new_run_id()
    return EngineSettings(
        concurrency=opts["concurrency"],
        account_concurrency=opts["account_concurrency"],
        rate_per_account=opts["rate_per_account"],
        policy=BackoffPolicy(max_attempts=opts["max_attempts"]),
        aws=AwsSettings(
            profile=opts["profile"],
            endpoint_url=opts["endpoint_url"],
            role_name=opts["role_name"],
            external_id=opts["external_id"],
            session_name=f"cognito-fleet-{run_id}",
            session_duration=opts["session_duration"],
        ),
    )


def execute(manifest: Path, opts: dict[str, Any]) -> RunResult:
    """Run the pipeline for `run` and `demo`; exit 2 on an invalid manifest or a foreign checkpoint."""
    logs.configure(opts["log_format"], opts["log_level"])
    default_checkpoint, default_report = default_paths(manifest)
    show_progress = sys.stderr.isatty() if opts.get("progress") is None else opts["progress"]
    policy = StopPolicy(drain_seconds=opts["drain_seconds"], max_runtime=opts["max_runtime"])
    try:
        with contextlib.ExitStack() as stack:
            observer: Observer = logs.RowLogger()
            if show_progress:
                total = len(parse(manifest).rows)
                observer = Fanout(observer, stack.enter_context(ProgressBar(total)))
            checkpoint = opts["checkpoint"] or default_checkpoint
            report = opts["report"] or default_report
            result = migrate(manifest, checkpoint, report, engine_settings(opts), observer, policy)
        if show_progress:
            summary_table(result.counts)
        return result
    except LockHeld as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_LOCKED)
    except ManifestError as exc:
        click.echo(str(exc), err=True)
        click.echo(f"{manifest}: {len(exc.problems)} problem(s); nothing was called", err=True)
        sys.exit(EXIT_USAGE)
    except CheckpointMismatch as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)


def print_result(result: RunResult) -> None:
    if result.stopped:
        click.echo(f"stopped early ({result.stopped}); rerun the same command to resume")
    click.echo(summary_line(result.counts))
    click.echo(f"report: {result.report} (and {result.report_jsonl})")
    click.echo(f"checkpoint: {result.checkpoint}")


@main.command(epilog=EXIT_HELP)
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@run_options
def run(manifest: Path, **opts: Any) -> None:
    """Migrate every domain of MANIFEST to its certificate_arn; rerun the same command to resume."""
    result = execute(manifest, opts)
    print_result(result)
    sys.exit(result.exit_code)


@main.command(epilog=EXIT_HELP)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("cognito-fleet-demo"),
    show_default=True,
    help="Where the demo's manifest, checkpoint and report go.",
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
    """Start the local sandbox, seed a multi-account fleet, migrate it, print the summary."""
    from fleet.sandbox.demo import run_demo

    sys.exit(
        run_demo(
            workdir,
            accounts,
            [r.strip() for r in regions.split(",") if r.strip()],
            domains_per_account,
            latency,
            throttle_rate,
        )
    )


from fleet.sandbox.cli import sandbox  # noqa: E402  (registers the `sandbox` group)

main.add_command(sandbox)
