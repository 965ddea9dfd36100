"""`run` and `plan`: options -> settings -> the pipeline; the prompt, the summary, the exit code."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from fleet.aws.credentials import AwsSettings
from fleet.cli import logs, options
from fleet.cli.help_sections import SectionedCommand
from fleet.cli.observing import Watch, check_option, observe_options
from fleet.cli.option_groups import (
    ALLOWED_HELP,
    EXIT_HELP,
    common_options,
    edge_options,
    engine_settings,
    filter_options,
    record_options,
    run_only_options,
    trust_state_dir_option,
)
from fleet.cli.plan_table import plan_table
from fleet.cli.progress import Fanout, ProgressBar, summary_table
from fleet.cli.s3_records import staged
from fleet.cli.state_options import STATE_REGION, StateArg, state_aws
from fleet.errors import EXIT_OK, FleetError
from fleet.migration.engine import Observer
from fleet.migration.pipeline import (
    Allowed,
    Job,
    Kind,
    RunResult,
    StopPolicy,
    default_paths,
    execute_job,
    load,
    new_run_id,
)
from fleet.records.own_files import PLAN, refuse_foreign
from fleet.records.plan_file import Approved, check_usable, read_plan
from fleet.records.report import check_report_paths, read_report
from fleet.records.rollback import rollback_state
from fleet.shard import RowFilter, Shard
from fleet.state.s3_objects import S3Location
from fleet.text import printable


def execute(
    manifest: Path,
    opts: dict[str, Any],
    read_only: bool = False,
    job: str | None = None,
    nowhere: Sequence[tuple[str, str]] = (),
    as_manifest: Path | None = None,
) -> tuple[RunResult, int, list[str]]:
    """Run (or plan, or check) with parsed options: the result, the exit code and the check's lines; expected
    errors are FleetErrors (exit 2, 3). ``job`` names it in the metrics (reconcile's); ``nowhere``: reconcile's
    selected domains with nowhere to go (told with the run's news); ``as_manifest``: the manifest the metrics name
    (reconcile --check's is a scratch file)."""
    logs.configure(opts["log_format"], opts["log_level"])
    run_id = new_run_id()
    command = "check" if opts.get("check") else job or ("plan" if read_only else "run")  # the metrics' job
    logs.bind(run_id=run_id, command=job or ("plan" if read_only else "run"), manifest=manifest)  # every line's
    if opts.get("plan_sha256") and opts.get("plan_file") is None:
        raise click.UsageError("--plan-sha256 goes with --plan PLAN.json")
    shard = opts["shard"]
    # Metrics and notifications: they watch, never change the result (an error before the run is told too).
    watch = Watch(opts, command, as_manifest or manifest, shard, nowhere)
    named_state, named_report = _paths(manifest, opts, shard, read_only, check=False)
    with watch.ending(named_report, _local(named_state), run_id, _aws(opts, run_id)):
        approved = _approved(manifest, opts) if opts.get("plan_file") is not None else None
        only = RowFilter(opts["only_accounts"], opts["exclude_accounts"] or frozenset(), opts["only_regions"])
        parsed = load(manifest, shard, only)  # the one parse of the run: every stage gets this object
        rows = len(parsed.rows)
        if not rows:  # a header and no rows (or a filter that keeps none): nothing to do is success
            logs.say(f"{manifest}: no rows to do: nothing to do", rows=0)
            sys.exit(EXIT_OK)
        state, report = _paths(manifest, opts, shard, read_only)
    # JSON logs mean every line is JSON: no progress bar unless asked for.
    show_progress = sys.stderr.isatty() and not logs.json_mode() if opts["progress"] is None else opts["progress"]
    change_ref = opts.get("change_ref") or (approved.plan.change_ref if approved else None)
    settings = dataclasses.replace(
        engine_settings(opts, rows, run_id), approved=approved, change_ref=change_ref, expiry=watch.outputs.metrics
    )
    row_logger = logs.RowLogger(quiet=show_progress)
    try:
        with contextlib.ExitStack() as stack:
            observer: Observer = Fanout(row_logger, watch.expiries) if watch.wanted else row_logger
            if show_progress:
                observer = Fanout(observer, stack.enter_context(ProgressBar(rows, plan=read_only)))
            kind = Kind.PLAN if read_only else Kind.RUN  # plan: the state is read for its holds, never written
            work = Job(kind, parsed, report, settings, state, observer, run_id=run_id)
            if read_only:
                allowed = Allowed(opts["allowed_accounts"], opts["organization"])
                work = dataclasses.replace(work, allowed=allowed, out=opts["out"], watch=command == "check")
            else:
                policy = StopPolicy(drain_seconds=opts["drain_seconds"], max_runtime=opts["max_runtime"])
                approve = None if opts["yes"] or not _interactive() else _ask
                work = dataclasses.replace(work, policy=policy, approve=approve)
            result = execute_job(work)
    except FleetError as exc:
        watch.failed(exc, report, settings.aws, _local(state), run_id)
        raise
    code = watch.exit_code(result)
    if result.fleet_held and command != "check":  # nothing was called: one line, exit 0
        logs.say(result.fleet_held, held=True, checkpoint=str(result.checkpoint))
        watch.finished(result, code, settings.aws, _local(state))
        sys.exit(code)
    by_code, by_account = _log_finished(result, code, read_only, row_logger.throttles, watch.findings)
    watch.finished(result, code, settings.aws, _local(state))
    if show_progress:
        if read_only:
            plan_table(result.report, result.plan_out or result.report)
        summary_table(result.counts, by_code, by_account)
    return result, code, watch.lines(result)


def _local(state: Path | S3Location) -> Path | None:
    """The metrics' last-success fallback reads a local state only (an S3 one: the textfile's own value)."""
    return state if isinstance(state, Path) else None


def _paths(
    manifest: Path, opts: dict[str, Any], shard: Shard | None, read_only: bool, check: bool = True
) -> tuple[Path | S3Location, Path]:
    """The state and the report (plan's: NAME.plan.csv), refused before anything if the report would go over a file
    the tool did not write (``check`` False: only named, for the metrics of an error before that)."""
    default_checkpoint, default_report = default_paths(manifest, shard)
    if read_only:
        default_report = default_report.with_name(default_report.name.replace(".report", ".plan"))
    report = opts["report"] or default_report
    if not check:
        return opts["checkpoint"] or default_checkpoint, report
    state = opts["checkpoint"] or _rollback_state(manifest) or default_checkpoint
    check_report_paths(report, run_record=not read_only)
    if read_only and opts["out"] is not None:
        refuse_foreign(opts["out"], PLAN)
    return state, report


def _aws(opts: dict[str, Any], run_id: str) -> Callable[[], AwsSettings]:
    """The hub's settings (SNS publishes as the hub), made only when an error is to be told."""
    return lambda: engine_settings(opts, 0, run_id).aws


def _log_finished(
    result: RunResult, code: int, read_only: bool, throttles: int, findings: list[dict[str, Any]]
) -> tuple[collections.Counter[str], collections.Counter[str]]:
    """``run_finished``, with the failures by code and by account (returned for the summary table)."""
    by_code, by_account = failures_of(result.report)
    logs.finish_run(
        code,
        counts=dict(result.counts),
        writes=0 if read_only else result.tally.writes,  # UpdateUserPoolDomain calls of this run that succeeded
        throttles=throttles,
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
        edge=dict(result.edges.counts) if result.edges and result.edges.counts else "not checked",
        edge_unreachable=dict(result.edges.unreachable) if result.edges and result.edges.unreachable else None,
        warnings=[line for line in result.edge_lines(read_only) if line.startswith("warning:")] or None,
        held=result.fleet_held.split("; ")[0] if result.fleet_held else None,  # --check: who held it, since when
        check=findings or None,
    )
    return by_code, by_account


def _approved(manifest: Path, opts: dict[str, Any]) -> Approved:
    """The plan `run --plan` applies, checked before anything else (an unusable plan is one line, nothing touched);
    pinned by --plan-sha256, or said not to be (stderr, run_started)."""
    pinned: str | None = opts.get("plan_sha256")
    found = read_plan(opts["plan_file"], pinned)
    check_usable(found, manifest, datetime.now(UTC), opts["plan_max_age"], pinned=pinned is not None)
    if pinned is None:
        logs.event(
            "plan_not_pinned",
            "warning",
            plan=str(found.path),
            sha256=found.sha256,
            message=f"--plan {found.path} is not pinned: its SHA-256 is {found.sha256}; compare it with the one "
            "approved, and give that one with --plan-sha256 so that a plan edited after its approval is refused",
        )
    return Approved(found, pinned=pinned is not None)


def _rollback_state(manifest: Path) -> Path | S3Location | None:
    """A rollback manifest's run records into the forward state it came from (its rollback record names it)."""
    forward = rollback_state(manifest)
    if forward is not None:
        logs.say(
            f"{manifest}: a rollback manifest: its run records into the forward state {forward} (--checkpoint)",
            checkpoint=str(forward),
        )
    return forward


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
    where = "".join(
        f"\n  {label}: {e['url']} ({e['source']}{'; via proxy ' + e['proxy'] if 'proxy' in e else ''})"
        for label, e in endpoints.items()
    )
    trusted = sorted({e["ca_bundle"] for e in endpoints.values() if "ca_bundle" in e})
    where += f"\nTLS trusts the CA bundle {', '.join(trusted)}" if trusted else ""
    click.echo(
        printable(
            f"About to write as {info['hub']}:\n"
            f"  {_n(info['writes'], 'write')} in {_n(info['write_accounts'], 'account')} "
            f"(of {info['rows']} domains in {info['accounts']} accounts, regions {', '.join(map(str, regions))})"  # type: ignore[call-overload]
            f"\n  manifest {info['manifest']}{_approval(info)}\ncalls go to:{where}",
            newlines=True,
        ),
        err=True,
    )
    return click.confirm("Write the new certificates?", default=False, err=True)


def _approval(info: dict[str, object]) -> str:
    """The prompt's lines on the plan applied (pinned or not) and the change ticket, when there are some."""
    plan, out = info.get("plan"), ""
    if isinstance(plan, dict):
        out += f"\n  plan {plan['path']} (SHA-256 {plan['sha256']}, {'pinned' if plan['pinned'] else 'NOT pinned'})"
    return out + (f"\n  change {info['change_ref']}" if info.get("change_ref") else "")


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


@click.command(cls=SectionedCommand, epilog=EXIT_HELP)
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@common_options
@filter_options
@edge_options
@run_only_options
@record_options
@trust_state_dir_option
@observe_options
def run(manifest: Path, **opts: Any) -> None:
    """Migrate every domain of MANIFEST to its certificate_arn; rerun the same command to resume."""
    # s3://: written here, uploaded at the end
    with staged(opts["report"], state_aws(opts), opts.get("checkpoint")) as opts["report"]:
        result, code, _ = execute(manifest, opts)
        print_result(result)
    sys.exit(code)


@click.command("plan", cls=SectionedCommand, epilog=EXIT_HELP)
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@common_options
@filter_options
@edge_options
@record_options
@trust_state_dir_option
@click.option("--allowed-accounts", callback=lambda _c, _p, v: options.id_list(v), help=ALLOWED_HELP)
@click.option(
    "--organization",
    is_flag=True,
    help="Warn about manifest accounts that are not ACTIVE accounts of the hub's AWS Organization (ListAccounts).",
)
@click.option(
    "--checkpoint",
    type=StateArg(),
    help="The state whose holds the plan respects (read, never written; a file or s3://BUCKET/KEY) [default: "
    "beside the manifest, NAME.checkpoint.sqlite]: a domain a rollback holds is planned `held`, a held fleet plans "
    "nothing.",
)
@STATE_REGION
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the plan to approve (JSON, mode 0600): every domain's current certificate, target and what "
    "will happen, when, by whom, from which manifest; `run --plan` applies it, `report` renders it.",
)
@check_option
@observe_options
def plan_command(manifest: Path, **opts: Any) -> None:
    """Show what `run` would do, read-only (Describe and ACM calls only): planned / unchanged / failed.

    The report defaults to NAME.plan.csv beside the manifest; the run's state is read for its holds (a domain a
    rollback holds is planned `held`), never written.
    """
    # s3://: written here, uploaded at the end
    with staged(opts["report"], state_aws(opts), opts.get("checkpoint")) as opts["report"]:
        result, code, check_lines = execute(manifest, opts, read_only=True)
        # The watcher looked even at a held fleet: its lines are the plan's (the hold is one of the check's lines).
        print_result(dataclasses.replace(result, fleet_held=None) if opts["check"] else result, read_only=True)
        for line in check_lines if not logs.json_mode() else ():
            click.echo(line)
    sys.exit(code)


def _n(count: object, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")
