"""Commands on the state and the records: `rollback`, `hold`, `release`, `history`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import click

from fleet.cli.option_groups import trust_state_dir_option
from fleet.cli.s3_records import fetched
from fleet.cli.state_options import LocationArg, StateArg, state_aws, state_aws_options
from fleet.errors import FleetError
from fleet.migration.state_backend import StatePath, for_command, opened
from fleet.records.report import jsonl_path
from fleet.records.rollback import Part, check_report, record_path, state_of, write_rollback_manifest
from fleet.state.s3_objects import S3Location
from fleet.text import printable


@click.command()
@click.argument("report", type=LocationArg(exists=True))
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
    type=StateArg(),
    help="The forward runs' state (--checkpoint; a file or s3://BUCKET/KEY) [default: the one REPORT's run record "
    "names (NAME.report.run.json), else NAME.checkpoint.sqlite beside REPORT or beside --manifest]",
)
@click.option("--domain", "domains", multiple=True, help="Roll back only this domain (repeatable).")
@click.option("--account", "accounts", multiple=True, help="Roll back only this account's domains (repeatable).")
@trust_state_dir_option
@state_aws_options
def rollback(
    report: Path | S3Location,
    out: Path,
    original: Path | None,
    state: StatePath | None,
    domains: tuple[str, ...],
    accounts: tuple[str, ...],
    **aws: Any,
) -> None:
    """Write a manifest that puts every domain the tool wrote (per REPORT and its state, whatever the row's status;
    with --domain/--account: those named) back on its previous certificate, and hold those domains in the state:
    forward runs report them `held` until `cognito-fleet release`. Running the manifest is an ordinary `run`; it
    records into the forward state (named in OUT's rollback record, OUT.rollback.json), so that state's history
    tells the whole story. REPORT and the state may be in S3 (s3://...)."""
    part = Part(frozenset(domains), frozenset(accounts))
    if isinstance(report, S3Location):  # read from S3 (with the files beside it); its state must be named
        if state is None:
            raise click.UsageError("a report in S3 needs --state (the forward runs' --checkpoint)")
        with fetched((report,), state_aws(aws)) as (local,):
            _rollback(local, out, original, state, part, aws)
        return
    _rollback(report, out, original, state, part, aws)


def _rollback(
    report: Path, out: Path, original: Path | None, state: StatePath | None, part: Part, aws: dict[str, Any]
) -> None:
    check_report(report)
    # --state, else the one the run record names: an s3:// one is opened as --state s3:// is.
    state_path: StatePath = state if isinstance(state, S3Location) else state_of(report, original, state)
    if isinstance(state_path, S3Location):
        with for_command(state_path, state_aws(aws), "rollback") as checkpoint:
            done = write_rollback_manifest(report, out, original, checkpoint, part)
    else:
        done = write_rollback_manifest(report, out, original, state_path, part)
    statuses = ", ".join(f"{k}={v}" for k, v in sorted(done.by_status.items()))
    click.echo(f"{out}: {len(done.rows)} domains back to their previous certificates ({statuses})")
    click.echo(
        f"held in {state_path} by {done.rollback_id}: forward runs leave them alone until "
        f"cognito-fleet release {state_path} --all (or --domain D)"
    )
    for missed in done.missed:
        click.echo(printable(f"not covered: {missed}"))
    click.echo(f"next: cognito-fleet run {out}  (its run records into {state_path}, as {record_path(out)} says)")


@click.command("hold")
@click.argument("state", type=StateArg(exists=True))
@click.option("--reason", required=True, help="Why (shown by every held run, with who held it and when).")
@trust_state_dir_option
@state_aws_options
def hold_command(state: StatePath, reason: str, **aws: Any) -> None:
    """Hold the whole fleet of STATE: every run on it exits 0 at once, calling and writing nothing, until
    `cognito-fleet release STATE`. Stops cron during an incident without editing crontabs."""
    from fleet.state.holds import who

    if not reason.strip():
        raise click.BadParameter("must say why", param_hint="--reason")
    with for_command(state, state_aws(aws), "hold") as checkpoint:
        checkpoint.set_fleet_hold(who(), reason.strip())
        held = checkpoint.fleet_hold()
    assert held is not None
    click.echo(f"{state}: the fleet is held by {held.who} since {held.at} ({held.reason}); a run in progress goes on")


@click.command("release")
@click.argument("state", type=StateArg(exists=True))
@click.option("--domain", "domains", multiple=True, help="Release this domain's rollback hold (repeatable).")
@click.option("--all", "everything", is_flag=True, help="Release every rollback hold and the fleet hold.")
@trust_state_dir_option
@state_aws_options
def release_command(state: StatePath, domains: tuple[str, ...], everything: bool, **aws: Any) -> None:
    """Let forward runs move held domains again (--domain D, --all), or lift the fleet hold (no option).
    Recorded in the state's history."""
    from fleet.state.holds import who

    if domains and everything:
        raise click.UsageError("give --domain or --all, not both")
    with for_command(state, state_aws(aws), "release") as checkpoint:
        unknown = sorted(set(domains) - set(checkpoint.holds()))
        if unknown:
            raise ReleaseError(f"{state}: not held: {', '.join(unknown)}; nothing released")
        me = who()
        if domains or everything:
            released = checkpoint.release_domains(None if everything else domains, me)
            noun = "domain" if len(released) == 1 else "domains"
            click.echo(f"{state}: released {len(released)} {noun}; the next run moves them forward")
        if not domains:
            if checkpoint.fleet_hold() is not None:
                checkpoint.set_fleet_hold(me, None)
                click.echo(f"{state}: the fleet hold is lifted; the next run goes on")
            elif not everything:
                click.echo(f"{state}: the fleet was not held (domain holds: release --domain D or --all)")


class ReleaseError(FleetError):
    """A release names a domain that is not held: nothing is released."""


class UnknownRun(FleetError):
    """`history --run` of a run the state does not know."""


@click.command("history")
@click.argument("states", nargs=-1, required=True, type=StateArg(exists=True))
@click.option("--domain", help="The history of this domain: every record of every run, writes in flight included.")
@click.option("--run", "run_id", help="The records of this run (exit 2 when the state does not know it).")
@click.option(
    "--report",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --run: write that run's report again (CSV, JSON Lines beside it).",
)
@trust_state_dir_option
@state_aws_options
def history_command(
    states: tuple[StatePath, ...], domain: str | None, run_id: str | None, out: Path | None, **aws: Any
) -> None:
    """Show what state files (--checkpoint; several: the shards of a fleet; s3://...) know, in time order under a
    header line: their runs (a plan applied, a rollback's run named), holds and releases; a domain's records and
    holds; a run's records; a past report."""
    from fleet.records.history import listing, rewrite_report

    if out is not None and run_id is None:
        raise click.UsageError("--report goes with --run RUN_ID")
    if out is not None and len(states) > 1:
        raise click.UsageError("--run RUN_ID --report takes one state file (a run belongs to one)")
    found = False
    stack = contextlib.ExitStack()
    checkpoints = [stack.enter_context(opened(state, state_aws(aws))) for state in states]  # read; never created
    with stack:
        if run_id is not None and not any(run_id in {r["run_id"] for r in c.runs()} for c in checkpoints):
            where = " ".join(str(s) for s in states)
            raise UnknownRun(f"{where}: no run {run_id!r} (its runs: cognito-fleet history {where})")
        for state, checkpoint in zip(states, checkpoints, strict=True):
            if out is not None and run_id is not None:
                count = rewrite_report(checkpoint, run_id, out)
                writes = checkpoint.writes(run_id)
                click.echo(f"{out}: {count} domains of run {run_id}, {writes} written by it (and {jsonl_path(out)})")
                return
            lines = listing(checkpoint, domain, run_id)  # a header line, then oldest first
            if len(states) > 1 and lines:
                click.echo(f"== {state}")
            for line in lines:
                click.echo(printable(line))  # the state's text came from AWS and manifests
            found = found or bool(lines)
    if not found:
        click.echo("nothing recorded" + (f" for {domain or run_id}" if domain or run_id else ""))


@click.command("unlock")
@click.argument("state", type=StateArg())
@click.option("--yes", is_flag=True, help="Do it without asking (scripts).")
@state_aws_options
def unlock_command(state: StatePath, yes: bool, **aws: Any) -> None:
    """Remove an s3:// state's lock by hand, when its holder is known to be dead and its lease too long to wait
    out. The holder's journal is fenced first: if it was alive after all, its next state write fails and it
    stops before sending another write. A local state needs no unlocking (the kernel drops its lock with its
    holder)."""
    from fleet.migration.state_backend import force_unlock, holder_of

    if not isinstance(state, S3Location):
        raise click.UsageError(f"{state}: a local state's lock is released when its holder exits; nothing to unlock")
    settings = state_aws(aws)
    found = holder_of(state, settings)
    if found is None:
        click.echo(f"{state}: not locked")
        return
    holder, etag = found
    click.echo(f"{state}: locked by {holder}")
    if not yes and not click.confirm("Remove the lock (and fence its holder)?", default=False, err=True):
        raise click.Abort()
    click.echo(f"{state}: unlocked ({force_unlock(state, settings, etag)})")  # only the lock shown
