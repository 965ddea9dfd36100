"""`reconcile`: discover what must move, write the manifest and inventory beside the state, and migrate them as
`run` does (the same ``execute``: canary, failure budget, --wait, edge proof, holds, stuck domains, records). One
command for the scheduler; its options are discover's and run's, under the same names."""

from __future__ import annotations

import collections
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from fleet.aws.credentials import AwsSettings
from fleet.cli import logs
from fleet.cli.discover_command import selection_options, source_options, sources_and_criteria
from fleet.cli.help_sections import SectionedCommand
from fleet.cli.observing import Watch, observe_options
from fleet.cli.option_groups import (
    EXIT_HELP,
    Decorator,
    common_options,
    edge_options,
    engine_settings,
    filter_options,
    record_options,
    run_only_options,
    trust_state_dir_option,
)
from fleet.cli.reconcile_check import reconcile_check
from fleet.cli.reconcile_plan import apply_plan, save_plan
from fleet.cli.run_commands import execute, print_result
from fleet.discover.job import reconcile_discovery, reconcile_paths
from fleet.errors import EXIT_OK
from fleet.migration.pipeline import RunResult, default_paths, new_run_id
from fleet.migration.state_store import state_at
from fleet.records.report import jsonl_path
from fleet.state.s3_objects import is_s3

DEFAULT_STATE = Path("reconcile.checkpoint.sqlite")
# run's row filters: discover's --accounts FILE and --regions say which accounts and regions are read.
_DISCOVER_SAYS = frozenset({"only_accounts", "only_regions"})


def without(names: frozenset[str], decorator: Decorator) -> Decorator:
    """``decorator``'s options but those named (reconcile takes run's options, except where discover's win)."""

    def decorate(fn: Any) -> Any:
        before = len(getattr(fn, "__click_params__", []))
        fn = decorator(fn)
        params = fn.__click_params__
        fn.__click_params__ = params[:before] + [p for p in params[before:] if p.name not in names]
        return fn

    return decorate


# run's wording that is not true of reconcile, which has no MANIFEST: its files sit beside its state.
RECONCILE_HELP = {
    "checkpoint": "The state (a local file); the manifest, inventory, report and plan go beside it "
    "(fleet.checkpoint.sqlite -> fleet.csv, fleet.inventory.csv, fleet.report.csv, fleet.plan.json) [default: "
    "reconcile.checkpoint.sqlite in the working directory; with --plan: the one beside the plan's manifest, "
    "NAME.checkpoint.sqlite].",
    "plan_file": "Apply exactly this approved plan (`reconcile --plan-only` made it, NAME.plan.json): no discovery; "
    "it runs the manifest the plan was made from (NAME.plan.manifest.csv, same SHA-256); a domain on another "
    "certificate than the plan saw, or not planned to be written, is not written (drifted-since-plan, exit 1).",
    "report": "CSV report; JSON Lines go beside it [default: beside the state, NAME.report.csv; --plan-only: "
    "NAME.plan.csv].",
}


def reworded(helps: dict[str, str]) -> Decorator:
    """The options named get reconcile's own help text (the rest read as run's)."""

    def decorate(fn: Any) -> Any:
        for param in fn.__click_params__:
            if param.name in helps:
                param.help = helps[param.name]
        return fn

    return decorate


@click.command("reconcile", cls=SectionedCommand, epilog=EXIT_HELP)
@reworded(RECONCILE_HELP)
@source_options
@selection_options
@click.option(
    "--plan-only",
    is_flag=True,
    help="Stop after a saved plan for a change board: NAME.plan.json beside the state, made from "
    "NAME.plan.manifest.csv (a copy of the manifest that later runs leave alone); apply it with "
    "`reconcile --plan NAME.plan.json --plan-sha256 DIGEST`.",
)
@common_options
@without(_DISCOVER_SAYS, filter_options)
@edge_options
@run_only_options
@record_options
@trust_state_dir_option
@observe_options
@click.option(
    "--check",
    is_flag=True,
    help="The watcher, with the same settings: discover (into a scratch directory) and check what the selection "
    "picks now and every domain the state manages, read-only (the state is not written); exit 1 while any is off "
    "its target, not served at its edge, or selected with nowhere to go. A held fleet is still watched. Pair "
    "with --role-name CognitoFleetReadOnlyRole.",
)
def reconcile(plan_only: bool, check: bool, **opts: Any) -> None:
    """Find the domains whose certificate must move (--issuer, --imported, --expiring-within) and move them
    (--auto or --map), as `run` does; the manifest and inventory go beside the state (--checkpoint). A rerun
    when all is done writes nothing and exits 0; a held fleet (`cognito-fleet hold`) calls nothing."""
    opts.update(dict.fromkeys(_DISCOVER_SAYS))
    if check and (plan_only or opts["plan_file"] is not None):
        raise click.UsageError("--check watches; it goes with neither --plan nor --plan-only")
    if is_s3(opts["checkpoint"]) or is_s3(opts["report"]):  # its manifest, inventory and plan sit beside them
        raise click.UsageError("reconcile keeps its state and files in a local directory: s3:// is for run and plan")
    logs.configure(opts["log_format"], opts["log_level"])  # first: a refusal too is one JSON error under cron
    if opts["plan_file"] is not None:  # an approved plan: exactly its manifest (its state beside), no discovery
        sys.exit(apply_plan(opts))
    state = opts["checkpoint"] = opts["checkpoint"] or DEFAULT_STATE
    sources, criteria = sources_and_criteria(opts)
    if not (criteria.auto or criteria.map_file):
        raise click.UsageError("reconcile moves domains: give --auto or --map FILE (discover lists them)")
    if check:  # a hold stops writes, never watching
        sys.exit(reconcile_check(opts, state, sources, criteria))
    manifest, inventory = reconcile_paths(state)[:2]
    run_id = new_run_id()
    logs.bind(run_id=run_id, command="reconcile", checkpoint=state)
    watch = Watch(opts, "reconcile", manifest)  # the metrics and messages of what ends before the run

    def aws() -> AwsSettings:
        return engine_settings(opts, 0, run_id).aws

    report = default_paths(manifest)[1]
    with watch.ending(report, state, run_id, aws):
        stop_if_held(state, watch, report, run_id, aws)
        found = reconcile_discovery(engine_settings(opts, 0, run_id), sources, criteria, state)
    if not found.rows:
        logs.say(
            f"reconcile: nothing to do: {found.domains} custom domains in {found.accounts} accounts checked, none "
            f"selected; inventory: {inventory}"
            if not found.code
            else f"reconcile: nothing moved: {found.summary}"
        )
        watch = Watch(opts, "reconcile", manifest, nowhere=found.cannot_move)  # metrics; nowhere to go: told
        watch.discovered(report, found.code, run_id, aws(), state)
        sys.exit(found.code)
    logs.say(f"reconcile: {found.summary}")
    if plan_only:
        sys.exit(save_plan(opts, state, found))
    result, code, _ = execute(manifest, opts, job="reconcile", nowhere=found.cannot_move)
    print_result(result)
    sys.exit(code or found.code)


def stop_if_held(state: Path, watch: Watch, report: Path, run_id: str, aws: Callable[[], AwsSettings]) -> None:
    """As every run on a held state: one line and exit 0, before any call or file (discovery calls AWS and
    rewrites the manifest and inventory); the metrics say held, and --notify tells it once."""
    held = state_at(state).holds()[0]
    if held is None:
        return
    logs.say(held, held=True, checkpoint=str(state))
    if watch.wanted:
        result = RunResult(collections.Counter(), report, jsonl_path(report), state, run_id=run_id, fleet_held=held)
        watch.finished(result, EXIT_OK, aws(), state)
    sys.exit(EXIT_OK)
