"""Command line: arguments -> settings -> pipeline; exit codes. No business logic here."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from fleet.aws.credentials import AwsSettings
from fleet.aws.edge import EDGE_ADDRESS_ENV, EdgeSettings, split_address
from fleet.aws.limits import call_ceiling
from fleet.aws.retry import BackoffPolicy
from fleet.cli import logs, options
from fleet.cli.plan_table import plan_table
from fleet.cli.progress import Fanout, ProgressBar, summary_table
from fleet.cli.report_command import report_command
from fleet.discover.select import Selection
from fleet.errors import EXIT_FAILED_ROWS, EXIT_OK, FleetError, reduce_group
from fleet.manifest import RowFilter, parse
from fleet.migrate import allow_list
from fleet.migrate.engine import EngineSettings, Observer
from fleet.migrate.pipeline import (
    Allowed,
    RunResult,
    StopPolicy,
    default_paths,
    load,
    migrate,
    new_run_id,
    plan,
)
from fleet.migrate.row import Mode
from fleet.migrate.stuck import human
from fleet.records.plan_file import DEFAULT_MAX_AGE, Approved, check_usable, read_plan, span
from fleet.records.report import jsonl_path, read_report
from fleet.records.rollback import check_report, state_of, write_rollback_manifest
from fleet.text import printable

# The defaults, in one place: the settings dataclasses.
ENGINE, STOP, DISCOVER = EngineSettings(), StopPolicy(), Selection()

EXIT_HELP = """\b
Exit codes:
  0   every row unchanged, verified or pending (plan: planned)
  1   at least one row failed (or drifted since its --plan), or the run stopped on
      its failure budget or canary
  2   usage error, invalid manifest, a state file or --plan that cannot be used,
      or the hub identity not confirmed by STS (nothing touched)
  3   another run holds this checkpoint's lock
  75  stopped early (signal, --max-runtime, or an endpoint unreachable past
      --outage-patience); rerun to resume"""

Decorator = Callable[[Any], Any]


class _Commands(click.Group):
    """The command group, with the CLI's one ``except``: expected errors are one line and their exit code;
    anything unexpected is one line and exit 1 (the traceback only with --log-level debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            try:
                return super().invoke(ctx)
            except BaseExceptionGroup as group:  # a task group's failures: the one that explains, not the group
                raise reduce_group(group) from None
        except FleetError as exc:
            logs.error("\n".join(exc.lines()), exc.exit_code, type(exc).__name__)
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if logs.debug_enabled():
                traceback.print_exc()
            hint = "" if logs.debug_enabled() else " (for the traceback: COGNITO_FLEET_DEBUG=1, or --log-level debug)"
            logs.error(f"error: unexpected {type(exc).__name__}: {exc}{hint}", EXIT_FAILED_ROWS, "Unexpected")
            sys.exit(EXIT_FAILED_ROWS)


@click.group(cls=_Commands, epilog=EXIT_HELP)
@click.version_option(package_name="cognito-fleet")
def main() -> None:
    """Move Cognito user pool custom domains onto new ACM certificates, across many accounts."""


ALLOWED_HELP = "Warn about manifest accounts not in this allow-list (comma list or @FILE)."


@main.command()
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--allowed-accounts", callback=lambda _c, _p, v: options.id_list(v), help=ALLOWED_HELP)
def validate(manifest: Path, allowed_accounts: frozenset[str] | None) -> None:
    """Check a manifest without calling AWS: list every problem, or summarise it."""
    m = parse(manifest)
    nothing = "; nothing to do" if not m.rows else ""
    click.echo(f"{manifest}: valid: {len(m.rows)} rows, {len(m.accounts)} accounts, {len(m.regions)} regions{nothing}")
    strangers = allow_list.outside(m.accounts, allowed_accounts or m.accounts)
    if strangers:
        click.echo("warning: " + allow_list.warning(strangers, "--allowed-accounts"), err=True)


def _apply(options: list[Decorator]) -> Decorator:
    def decorate(fn: Any) -> Any:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


common_options = _apply(
    [
        click.option(
            "--concurrency",
            type=click.IntRange(1, 65536),
            default=ENGINE.concurrency,
            help="A ceiling on calls in flight over all accounts [default: none: the per-account rate limits bound "
            "them, and the file-descriptor limit (raised to its hard limit)].",
        ),
        click.option(
            "--account-concurrency",
            type=click.IntRange(1, 4096),
            default=ENGINE.account_concurrency,
            show_default=True,
            help="Accounts worked on at once (each holds its credentials and rate limits).",
        ),
        click.option(
            "--rate-per-account",
            type=click.FloatRange(0.01, 100),
            default=ENGINE.rate_per_account,
            show_default=True,
            help="Cognito calls per second per account and region (AWS's write quota is 15/s, shared "
            "with the account's own traffic).",
        ),
        click.option(
            "--max-attempts",
            type=click.IntRange(1, 50),
            default=ENGINE.policy.max_attempts,
            show_default=True,
            help="Attempts per call for throttling, 5xx and connection errors.",
        ),
        click.option(
            "--outage-patience",
            type=click.FloatRange(0, 24 * 3600),
            default=ENGINE.outage_patience,
            show_default=True,
            help="Seconds an endpoint may refuse connections (an outage: calls wait for it, spending no row's "
            "attempts) before the run stops as on SIGTERM (exit 75, rerun to resume).",
        ),
        click.option(
            "--min-validity-days",
            type=click.FloatRange(0, 3650),
            default=ENGINE.min_validity_days,
            show_default=True,
            help="Refuse target certificates that expire sooner.",
        ),
        click.option(
            "--role-name",
            default=ENGINE.aws.role_name,
            show_default=True,
            help="Role assumed in each account when a row has no role_arn.",
        ),
        click.option(
            "--external-id",
            help="ExternalId for AssumeRole when a row has none (visible in `ps`: under cron prefer "
            f"--external-id-file or ${options.EXTERNAL_ID_ENV}).",
        ),
        click.option(
            "--external-id-file",
            type=click.Path(dir_okay=False, path_type=Path),
            callback=lambda _c, _p, v: options.secret_file(v),
            help=f"Read the ExternalId from this file (one line; never logged) [default: ${options.EXTERNAL_ID_ENV}].",
        ),
        click.option(
            "--session-duration",
            type=click.IntRange(900, 43200),
            default=ENGINE.aws.session_duration,
            show_default=True,
            help="Assumed-role session length in seconds (refreshed before expiry); at most the role's "
            "MaxSessionDuration (3600 for the role iam/role-stackset.yaml creates).",
        ),
        click.option("--profile", help="AWS profile of the hub (calling) identity."),
        click.option("--endpoint-url", help="Send every AWS call here (e.g. the sandbox)."),
        click.option(
            "--insecure-endpoint",
            is_flag=True,
            help="Allow an http:// endpoint on another machine (keys and tokens would travel unencrypted); "
            "plain HTTP to 127.0.0.1/localhost is always allowed.",
        ),
        click.option(
            "--log-format",
            type=click.Choice(["auto", "json", "console"]),
            default="auto",
            show_default=True,
            help="auto: console on a terminal, JSON lines otherwise.",
        ),
        click.option(
            "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True
        ),
    ]
)

filter_options = _apply(  # plan and run: which rows, where the report goes, how progress shows
    [
        click.option(
            "--report",
            type=click.Path(dir_okay=False, path_type=Path),
            help="CSV report; JSON Lines go beside it [default: beside the manifest]",
        ),
        click.option(
            "--shard",
            callback=lambda _c, _p, v: options.shard(v),
            help="Take only shard I of N (I/N, 0-based): a deterministic split by account, for N machines "
            "with a checkpoint each.",
        ),
        click.option(
            "--progress/--no-progress",
            default=None,
            help="Progress bar and summary table [default: on a terminal only].",
        ),
        click.option(
            "--accounts",
            "only_accounts",
            callback=lambda _c, _p, v: options.id_list(v),
            help="Only rows of these accounts (comma list or @FILE). The state is not changed by a filter.",
        ),
        click.option(
            "--exclude-accounts",
            callback=lambda _c, _p, v: options.id_list(v),
            help="Leave out rows of these accounts (comma list or @FILE).",
        ),
        click.option(
            "--regions",
            "only_regions",
            callback=lambda _c, _p, v: options.id_list(v),
            help="Only rows of these regions (comma list or @FILE).",
        ),
    ]
)


def _edge_address(_c: click.Context, _p: click.Parameter, value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        split_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value.strip()


edge_options = _apply(  # plan and run: where the edge check connects, or no edge check
    [
        click.option(
            "--edge-check/--no-edge-check",
            default=ENGINE.edge.check,
            show_default=True,
            help="Verify at the edge: a TLS handshake (SNI = the domain) must show the target certificate before a "
            "domain is verified (plan: show what each edge serves). Off: verified is Cognito's word (ACTIVE).",
        ),
        click.option(
            "--edge-address",
            envvar=EDGE_ADDRESS_ENV,
            callback=_edge_address,
            metavar="HOST:PORT",
            help=f"Connect here for every domain's edge check instead of its CloudFront host on 443 (the sandbox, a "
            f"proxy) [env: {EDGE_ADDRESS_ENV}].",
        ),
    ]
)

run_only_options = _apply(
    [
        click.option(
            "--checkpoint",
            type=click.Path(dir_okay=False, path_type=Path),
            help="SQLite checkpoint [default: beside the manifest, NAME.checkpoint.sqlite]",
        ),
        click.option(
            "--wait/--no-wait",
            default=ENGINE.mode.wait,
            show_default=True,
            help="After each write, poll until Cognito reports it ACTIVE on the new certificate.",
        ),
        click.option(
            "--wait-timeout",
            type=click.FloatRange(0, 24 * 3600),
            default=ENGINE.mode.wait_timeout,
            show_default=True,
            help="Seconds to wait for a written domain to become ACTIVE (then: pending).",
        ),
        click.option(
            "--wait-interval",
            type=click.FloatRange(0.01, 600),
            default=ENGINE.mode.wait_interval,
            show_default=True,
            help="First poll interval in seconds (grows x1.5 up to 60).",
        ),
        click.option(
            "--canary",
            type=click.IntRange(0, 1000),
            default=ENGINE.canary,
            show_default=True,
            help="Write and verify this many domains (in distinct accounts) before all others.",
        ),
        click.option(
            "--max-failures",
            callback=lambda _c, _p, v: options.budget(v),
            help="Failure budget: N rows or P% of the manifest; once exceeded no new write starts.",
        ),
        click.option(
            "--stuck-after",
            default=human(timedelta(seconds=ENGINE.mode.stuck_after)),
            show_default=True,
            callback=lambda _c, _p, v: options.duration(v),
            help="A written domain still UPDATING this long after its write fails StuckUpdating (seconds, or 90m, 2h).",
        ),
        click.option(
            "--drain-seconds",
            type=click.FloatRange(0, 3600),
            default=STOP.drain_seconds,
            show_default=True,
            help="After SIGTERM/SIGINT or --max-runtime: how long in-flight calls may finish.",
        ),
        click.option(
            "--max-runtime",
            type=click.FloatRange(1, None),
            help="Stop starting rows after this many seconds (then drain, exit 75).",
        ),
        click.option(
            "--plan",
            "plan_file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Apply exactly this plan (`plan --out`): MANIFEST must be the plan's (same SHA-256); a domain on "
            "another certificate than the plan saw, or not planned to be written, is not written "
            "(drifted-since-plan, exit 1).",
        ),
        click.option(
            "--plan-max-age",
            default=span(timedelta(seconds=DEFAULT_MAX_AGE)),
            show_default=True,
            callback=lambda _c, _p, v: options.duration(v),
            help="With --plan: refuse (exit 2) a plan made longer ago than this (seconds, or 90m, 2h, 7d).",
        ),
        click.option(
            "--yes",
            "-y",
            is_flag=True,
            help="Do not ask before writing (on a terminal `run` says how many writes in how many accounts and asks "
            "y/N, only when there is something to write; without a terminal it never asks).",
        ),
    ]
)


def engine_settings(opts: dict[str, Any], rows: int, run_id: str) -> EngineSettings:
    return EngineSettings(
        concurrency=opts["concurrency"],
        account_concurrency=opts["account_concurrency"],
        rate_per_account=opts["rate_per_account"],
        policy=BackoffPolicy(max_attempts=opts["max_attempts"]),
        aws=AwsSettings(
            profile=opts["profile"],
            endpoint_url=opts["endpoint_url"],
            insecure_endpoint=opts["insecure_endpoint"],
            role_name=opts["role_name"],
            external_id=options.external_id(opts["external_id"], opts["external_id_file"], os.environ),
            session_name=f"cognito-fleet-{run_id}",
            session_duration=opts["session_duration"],
            pool_connections=call_ceiling(opts["concurrency"]),
        ),
        # `run`'s own options; `plan` and `discover` keep the defaults.
        mode=Mode(
            wait=opts["wait"],
            wait_timeout=opts["wait_timeout"],
            wait_interval=opts["wait_interval"],
            stuck_after=opts["stuck_after"],
        )
        if "wait" in opts
        else ENGINE.mode,
        min_validity_days=opts["min_validity_days"],
        max_failures=options.failure_budget(opts["max_failures"], rows) if "max_failures" in opts else None,
        canary=opts.get("canary", ENGINE.canary),
        outage_patience=opts["outage_patience"],
        edge=EdgeSettings(check=opts["edge_check"], address=opts["edge_address"])
        if "edge_check" in opts
        else ENGINE.edge,
    )


def execute(manifest: Path, opts: dict[str, Any], read_only: bool = False) -> RunResult:
    """Run (or plan) with parsed options; expected errors are FleetErrors (exit 2, 3)."""
    logs.configure(opts["log_format"], opts["log_level"])
    run_id = new_run_id()
    logs.bind(run_id=run_id, command="plan" if read_only else "run", manifest=manifest)
    approved = None
    if opts.get("plan_file") is not None:  # before anything else: an unusable plan is one line, nothing touched
        approved = Approved(read_plan(opts["plan_file"]))
        check_usable(approved.plan, manifest, datetime.now(UTC), opts["plan_max_age"])
    shard = opts["shard"]
    only = RowFilter(opts["only_accounts"], opts["exclude_accounts"] or frozenset(), opts["only_regions"])
    parsed = load(manifest, shard, only)  # the one parse of the run: every stage gets this object
    rows = len(parsed.rows)
    if not rows:  # a header and no rows (or a filter that keeps none): nothing to do is success
        logs.say(f"{manifest}: no rows to do: nothing to do", rows=0)
        sys.exit(EXIT_OK)
    default_checkpoint, default_report = default_paths(manifest, shard)
    show_progress = sys.stderr.isatty() if opts["progress"] is None else opts["progress"]
    settings = dataclasses.replace(engine_settings(opts, rows, run_id), approved=approved)
    row_logger = logs.RowLogger(quiet=show_progress)
    with contextlib.ExitStack() as stack:
        observer: Observer = row_logger
        if show_progress:
            observer = Fanout(observer, stack.enter_context(ProgressBar(rows, plan=read_only)))
        if read_only:
            report = opts["report"] or default_report.with_name(default_report.name.replace(".report", ".plan"))
            allowed = Allowed(opts["allowed_accounts"], opts["organization"])
            result = plan(parsed, report, settings, observer, run_id=run_id, allowed=allowed, out=opts["out"])
        else:
            policy = StopPolicy(drain_seconds=opts["drain_seconds"], max_runtime=opts["max_runtime"])
            checkpoint, report = opts["checkpoint"] or default_checkpoint, opts["report"] or default_report
            approve = None if opts["yes"] or not _interactive() else _ask
            result = migrate(parsed, checkpoint, report, settings, observer, policy, run_id=run_id, approve=approve)
    if result.fleet_held:  # nothing was called: one line, exit 0
        logs.say(result.fleet_held, held=True, checkpoint=str(result.checkpoint))
        sys.exit(result.exit_code)
    by_code, by_account = failures_of(result.report)
    logs.finish_run(
        result.exit_code,
        counts=dict(result.counts),
        writes=0 if read_only else result.tally.writes,  # UpdateUserPoolDomain calls of this run that succeeded
        throttles=row_logger.throttles,
        failures=dict(by_code),
        failures_before_write=dict(result.tally.before_write),
        failures_after_write=dict(result.tally.after_write),
        failed_accounts=dict(by_account),
        canary=result.tally.notes or None,
        pending=[{"domain": d, "age_s": round(a)} for d, a in result.pending[:20]] or None,
        drift=result.drift,
        stop_reason=result.stopped,
        report=str(result.report),
        report_jsonl=str(result.report_jsonl),
        checkpoint=None if read_only else str(result.checkpoint),
        edge=dict(result.edges.counts) if result.edges else "not checked",
        edge_unreachable=dict(result.edges.unreachable) if result.edges and result.edges.unreachable else None,
        warnings=[line for line in result.edge_lines(read_only) if line.startswith("warning:")] or None,
    )
    if show_progress:
        if read_only:
            plan_table(result.report, result.plan_out or result.report)
        summary_table(result.counts, by_code, by_account)
    return result


def _interactive() -> bool:
    """A person at a terminal (cron, pipes and CI never are: they are never asked)."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def _ask(info: dict[str, object]) -> bool:
    """Show who is about to write what (the writes a plan found), and ask y/N (default no); nothing to write: no
    question."""
    if not info["writes"]:
        click.echo(f"nothing to write ({info['rows']} domains checked): not asking", err=True)
        return True
    regions = info["regions"]
    endpoints: dict[str, dict[str, str]] = info["endpoints"]  # type: ignore[assignment]
    where = "".join(f"\n  {label}: {e['url']} ({e['source']})" for label, e in endpoints.items())
    click.echo(
        printable(
            f"About to write as {info['hub']}:\n"
            f"  {info['writes']} writes in {info['write_accounts']} accounts "
            f"(of {info['rows']} domains in {info['accounts']} accounts, regions {', '.join(map(str, regions))})"  # type: ignore[call-overload]
            f"\n  manifest {info['manifest']}\ncalls go to:{where}",
            newlines=True,
        ),
        err=True,
    )
    return click.confirm("Write the new certificates?", default=False, err=True)


def failures_of(report: Path) -> tuple[collections.Counter[str], collections.Counter[str]]:
    """Failed rows of a report by error code and by account."""
    by_code: collections.Counter[str] = collections.Counter()
    by_account: collections.Counter[str] = collections.Counter()
    for line in read_report(report, ("status", "error_code", "account_id")).lines:
        if line["status"] == "failed":
            by_code[line["error_code"] or "unknown"] += 1
            by_account[line["account_id"]] += 1
    return by_code, by_account


def print_result(result: RunResult, read_only: bool = False) -> None:
    """The end of run/plan for a person; under JSON logs, run_finished has said it all."""
    if logs.json_mode():
        return
    for line in result.lines(read_only):
        click.echo(line)


@main.command(epilog=EXIT_HELP)
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@common_options
@filter_options
@edge_options
@run_only_options
def run(manifest: Path, **opts: Any) -> None:
    """Migrate every domain of MANIFEST to its certificate_arn; rerun the same command to resume."""
    result = execute(manifest, opts)
    print_result(result)
    sys.exit(result.exit_code)


@main.command("plan", epilog=EXIT_HELP)
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@common_options
@filter_options
@edge_options
@click.option("--allowed-accounts", callback=lambda _c, _p, v: options.id_list(v), help=ALLOWED_HELP)
@click.option(
    "--organization",
    is_flag=True,
    help="Warn about manifest accounts that are not ACTIVE accounts of the hub's AWS Organization (ListAccounts).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the plan to approve (JSON, mode 0600): every domain's current certificate, target and what "
    "will happen, when, by whom, from which manifest; `run --plan` applies it, `report` renders it.",
)
def plan_command(manifest: Path, **opts: Any) -> None:
    """Show what `run` would do, read-only (Describe and ACM calls only): planned / unchanged / failed.

    The report defaults to NAME.plan.csv beside the manifest; the run's checkpoint is not touched.
    """
    result = execute(manifest, opts, read_only=True)
    print_result(result, read_only=True)
    sys.exit(result.exit_code)


@main.command(
    epilog="""\b
Exit codes:
  0  every account and region was read; the manifest lists the selected domains (maybe none)
  1  some accounts, regions or domains could not be read (see the inventory)
  2  usage error, a bad accounts/map file, or the hub identity not confirmed by STS"""
)
@click.option(
    "--accounts",
    "accounts_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="One account id per line, or a CSV account_id[,role_arn,external_id].",
)
@click.option("--organization", is_flag=True, help="Take the ACTIVE accounts of the hub's AWS Organization.")
@click.option("--ou", "ous", multiple=True, help="With --organization: only these OUs and their children.")
@click.option("--exclude", multiple=True, help="Account ids to leave out (repeatable).")
@click.option("--regions", required=True, help="Comma-separated regions to inventory.")
@click.option(
    "--map",
    "map_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="CSV old_certificate_arn,new_certificate_arn: move domains on an old certificate to the new.",
)
@click.option(
    "--auto",
    is_flag=True,
    help="For domains whose certificate expires soon, pick the newest suitable ISSUED certificate.",
)
@click.option(
    "--expiring-within",
    type=click.FloatRange(0, 3650),
    default=DISCOVER.expiring_within_days,
    show_default=True,
    help="--auto: only domains whose certificate expires within this many days.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Manifest to write.")
@click.option(
    "--inventory",
    "inventory_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Inventory CSV (+ .jsonl) [default: beside --out, NAME.inventory.csv]",
)
@common_options
def discover(
    accounts_file: Path | None,
    organization: bool,
    ous: tuple[str, ...],
    exclude: tuple[str, ...],
    regions: str,
    map_file: Path | None,
    auto: bool,
    expiring_within: float,
    out: Path,
    inventory_path: Path | None,
    **opts: Any,
) -> None:
    """Inventory the custom domains of many accounts and write the manifest that migrates them."""
    from fleet.discover.job import run_discovery

    if bool(accounts_file) == organization:
        raise click.UsageError("give exactly one of --accounts FILE and --organization")
    if bool(map_file) == auto:
        raise click.UsageError("give exactly one of --map FILE and --auto")
    logs.configure(opts["log_format"], opts["log_level"])
    run_id = new_run_id()
    logs.bind(run_id=run_id, command="discover", out=out)
    region_list = options.split_list(regions)
    inventory_path = inventory_path or out.with_name(out.with_suffix("").name + ".inventory.csv")
    code, message = run_discovery(
        engine_settings(opts, 0, run_id),
        accounts_file,
        organization,
        ous,
        exclude,
        region_list,
        map_file,
        expiring_within,
        out,
        inventory_path,
    )
    logs.say(message)
    sys.exit(code)


@main.command()
@click.argument("report", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The rollback manifest to write."
)
@click.option(
    "--manifest",
    "original",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The migration's manifest, to carry its role_arn / external_id columns over.",
)
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The forward runs' state (--checkpoint) [default: beside REPORT (NAME.checkpoint.sqlite), or beside "
    "--manifest]",
)
def rollback(report: Path, out: Path, original: Path | None, state: Path | None) -> None:
    """Write a manifest that puts every domain the tool wrote (per REPORT and its state, whatever the row's status)
    back on its previous certificate, and hold those domains in the state: forward runs report them `held` until
    `cognito-fleet release`. Running the manifest is an ordinary `run` (with its own checkpoint)."""
    check_report(report)
    state_path = state_of(report, original, state)
    done = write_rollback_manifest(report, out, original, state_path)
    statuses = ", ".join(f"{k}={v}" for k, v in sorted(done.by_status.items()))
    click.echo(f"{out}: {len(done.rows)} domains back to their previous certificates ({statuses})")
    click.echo(
        f"held in {state_path} by {done.rollback_id}: forward runs leave them alone until "
        f"cognito-fleet release {state_path} --all (or --domain D)"
    )
    for missed in done.missed:
        click.echo(f"not covered: {missed}")
    click.echo(f"next: cognito-fleet run {out}")


@main.command("hold")
@click.argument("state", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--reason", required=True, help="Why (shown by every held run, with who held it and when).")
def hold_command(state: Path, reason: str) -> None:
    """Hold the whole fleet of STATE: every run on it exits 0 at once, calling and writing nothing, until
    `cognito-fleet release STATE`. Stops cron during an incident without editing crontabs."""
    from fleet.state.checkpoint import Checkpoint
    from fleet.state.holds import who

    if not reason.strip():
        raise click.BadParameter("must say why", param_hint="--reason")
    checkpoint = Checkpoint(state, create=False)
    try:
        checkpoint.set_fleet_hold(who(), reason.strip())
        held = checkpoint.fleet_hold()
    finally:
        checkpoint.close()
    assert held is not None
    click.echo(f"{state}: the fleet is held by {held.who} since {held.at} ({held.reason}); a run in progress goes on")


@main.command("release")
@click.argument("state", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--domain", "domains", multiple=True, help="Release this domain's rollback hold (repeatable).")
@click.option("--all", "everything", is_flag=True, help="Release every rollback hold and the fleet hold.")
def release_command(state: Path, domains: tuple[str, ...], everything: bool) -> None:
    """Let forward runs move held domains again (--domain D, --all), or lift the fleet hold (no option).
    Recorded in the state's history."""
    from fleet.state.checkpoint import Checkpoint
    from fleet.state.holds import who

    if domains and everything:
        raise click.UsageError("give --domain or --all, not both")
    checkpoint = Checkpoint(state, create=False)
    try:
        unknown = sorted(set(domains) - set(checkpoint.holds()))
        if unknown:
            raise ReleaseError(f"{state}: not held: {', '.join(unknown)}; nothing released")
        me = who()
        if domains or everything:
            released = checkpoint.release_domains(None if everything else domains, me)
            click.echo(f"{state}: released {len(released)} domains; the next run moves them forward")
        if not domains:
            if checkpoint.fleet_hold() is not None:
                checkpoint.set_fleet_hold(me, None)
                click.echo(f"{state}: the fleet hold is lifted; the next run goes on")
            elif not everything:
                click.echo(f"{state}: the fleet was not held (domain holds: release --domain D or --all)")
    finally:
        checkpoint.close()


class ReleaseError(FleetError):
    """A release names a domain that is not held: nothing is released."""


class UnknownRun(FleetError):
    """`history --run` of a run the state does not know."""


@main.command("history")
@click.argument("states", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--domain", help="The history of this domain: every record of every run, writes in flight included.")
@click.option("--run", "run_id", help="The records of this run (exit 2 when the state does not know it).")
@click.option(
    "--report",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --run: write that run's report again (CSV, JSON Lines beside it).",
)
def history_command(states: tuple[Path, ...], domain: str | None, run_id: str | None, out: Path | None) -> None:
    """Show what state files (--checkpoint; several: the shards of a fleet) know: their runs, holds and releases; a
    domain's or a run's history; a past report."""
    from fleet.records.history import history_lines, holds_lines, rewrite_report, runs_table
    from fleet.state.checkpoint import Checkpoint

    if out is not None and run_id is None:
        raise click.UsageError("--report goes with --run RUN_ID")
    if out is not None and len(states) > 1:
        raise click.UsageError("--run RUN_ID --report takes one state file (a run belongs to one)")
    found = False
    checkpoints = [Checkpoint(state, create=False) for state in states]  # read them; never create one
    try:
        if run_id is not None and not any(run_id in {r["run_id"] for r in c.runs()} for c in checkpoints):
            where = " ".join(str(s) for s in states)
            raise UnknownRun(f"{where}: no run {run_id!r} (its runs: cognito-fleet history {where})")
        for state, checkpoint in zip(states, checkpoints, strict=True):
            if out is not None and run_id is not None:
                count = rewrite_report(checkpoint, run_id, out)
                writes = checkpoint.writes(run_id)
                click.echo(f"{out}: {count} domains of run {run_id}, {writes} written by it (and {jsonl_path(out)})")
                return
            lines = history_lines(checkpoint, domain, run_id) if domain or run_id else runs_table(checkpoint)
            if not run_id:
                lines += holds_lines(checkpoint, domain)
            if len(states) > 1 and lines:
                click.echo(f"== {state}")
            for line in lines:
                click.echo(printable(line))  # the state's text came from AWS and manifests
            found = found or bool(lines)
    finally:
        for checkpoint in checkpoints:
            checkpoint.close()
    if not found:
        click.echo("nothing recorded" + (f" for {domain or run_id}" if domain or run_id else ""))


main.add_command(report_command)


def _register_sandbox() -> None:
    """The sandbox package registers its own commands (`sandbox serve|seed`, `demo`); the engine never imports it."""
    from fleet.sandbox.cli import register

    register(main)


_register_sandbox()
