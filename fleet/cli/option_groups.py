"""The options the commands share (click decorators), and the settings they make: defaults from the dataclasses."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from fleet.aws.credentials import AwsSettings
from fleet.aws.edge import EDGE_ADDRESS_ENV, EdgeSettings, split_address
from fleet.aws.limits import call_ceiling
from fleet.aws.retry import BackoffPolicy
from fleet.cli import options, settings
from fleet.cli.state_options import LOCK_LEASE, RUN_CHECKPOINT, STATE_REGION, LocationArg
from fleet.discover.select import Selection
from fleet.migration.engine import EngineSettings
from fleet.migration.pipeline import (
    StopPolicy,
)
from fleet.migration.row import Mode
from fleet.migration.stuck import human
from fleet.records.plan_file import DEFAULT_MAX_AGE, span
from fleet.state.directory import TRUST_ENV, trust_directories

# The defaults, in one place: the settings dataclasses.
ENGINE, STOP, DISCOVER = EngineSettings(), StopPolicy(), Selection()

EXIT_HELP = """\b
Exit codes:
  0   every row unchanged, verified, pending or held (plan: planned), or the
      fleet is held (`hold`: nothing called)
  1   at least one row failed (or drifted since its --plan), or the run stopped on
      its failure budget or canary
  2   usage error, invalid manifest, a state file or --plan that cannot be used,
      or the hub identity not confirmed by STS (nothing touched)
  3   another run holds this checkpoint's lock
  75  stopped early (signal, --max-runtime, an endpoint unreachable past
      --outage-patience, or a state file that cannot be written); rerun to resume"""

ALLOWED_HELP = "Warn about manifest accounts not in this allow-list (comma list or @FILE)."

Decorator = Callable[[Any], Any]


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
            help="Seconds an endpoint may be down (refused, reset, silent or a load balancer's 5xx, 3 calls in a "
            "row: calls wait for it, spending no row's attempts) before the command stops: run/plan as on SIGTERM "
            "(exit 75, rerun to resume); discover with what it could not read as errors (exit 1).",
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
            type=LocationArg(),
            help="CSV report; JSON Lines and the run record go beside it; a file or s3://BUCKET/PREFIX/NAME.csv "
            "[default: beside the manifest]",
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

# Every command that opens a state: which shared directories the operator trusts (docs/security.md).
trust_state_dir_option = click.option(
    "--trust-state-dir",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    expose_value=False,
    callback=lambda _c, _p, v: trust_directories(v),
    help=f"Use a state in DIR although others may remove or replace files there (a volume shared through "
    f"Kubernetes' fsGroup): whoever can write to DIR then controls the state and its holds. Repeatable "
    f"[env: {TRUST_ENV}, ':'-separated].",
    metavar="DIR",
)

run_only_options = _apply(
    [
        RUN_CHECKPOINT,
        STATE_REGION,
        LOCK_LEASE,
        click.option(
            "--wait/--no-wait",
            default=ENGINE.mode.wait,
            show_default=True,
            help="After each write, poll until Cognito reports it ACTIVE on the new certificate and its edge "
            "serves it (verified).",
        ),
        click.option(
            "--wait-timeout",
            type=click.FloatRange(0, 24 * 3600),
            default=ENGINE.mode.wait_timeout,
            show_default=True,
            help="Seconds to wait for a written domain to become ACTIVE and served at its edge (then: pending).",
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
            "--plan-sha256",
            "plan_sha256",
            metavar="DIGEST",
            callback=lambda _c, _p, v: _sha256(v),
            help="With --plan: the plan file's SHA-256 as approved (`cognito-fleet report PLAN.json` shows it); a "
            "file with any other digest is refused (exit 2, nothing done). Without it the run says the plan was "
            "not pinned.",
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


record_options = _apply(  # plan and run: what the records name
    [
        click.option(
            "--change-ref",
            metavar="REF",
            callback=lambda _c, _p, v: _change_ref(v),
            help="The change ticket this run carries out (CHG-1234, a URL): named in run_started, the run record "
            "and the change record (plan: in the plan file; run --plan: the plan's, unless given).",
        ),
    ]
)

_SHA256 = re.compile(r"[0-9a-f]{64}")


def _sha256(value: str | None) -> str | None:
    if value is None:
        return None
    digest = value.strip().lower().removeprefix("sha256:")
    if not _SHA256.fullmatch(digest):
        raise click.BadParameter(f"{value!r} is not a SHA-256 (64 hexadecimal digits, as `report PLAN.json` shows)")
    return digest


def _change_ref(value: str | None) -> str | None:
    if value is None:
        return None
    ref = value.strip()
    if not ref or len(ref) > 200 or not ref.isprintable():
        raise click.BadParameter("a change reference is 1 to 200 printable characters (CHG-1234, a ticket URL)")
    return ref


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
            state_region=opts.get("state_region"),
            lock_lease=opts.get("lock_lease", ENGINE.aws.lock_lease),
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
        change_ref=opts.get("change_ref"),
        edge=EdgeSettings(check=opts["edge_check"], address=opts["edge_address"])
        if "edge_check" in opts
        else ENGINE.edge,
        settings_file=settings.used(),
    )
