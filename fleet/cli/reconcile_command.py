"""`reconcile`: discover what must move, write the manifest and inventory beside the state, and migrate them as
`run` does (the same ``execute``: canary, failure budget, --wait, edge proof, holds, stuck domains, records). One
command for the scheduler; its options are discover's and run's, under the same names."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import click

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
from fleet.cli.run_commands import execute, print_result
from fleet.discover.job import reconcile_discovery, reconcile_paths
from fleet.migration.pipeline import default_paths, new_run_id
from fleet.records.plan_file import read_plan

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


@click.command("reconcile", cls=SectionedCommand, epilog=EXIT_HELP)
@source_options
@selection_options
@click.option(
    "--plan-only",
    is_flag=True,
    help="Stop after a saved plan (NAME.plan.json beside the state) for a change board; apply it with "
    "`reconcile --plan FILE`.",
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
    "its target, not served at its edge, or selected with nowhere to go. Pair with --role-name "
    "CognitoFleetReadOnlyRole.",
)
def reconcile(plan_only: bool, check: bool, **opts: Any) -> None:
    """Find the domains whose certificate must move (--issuer, --imported, --expiring-within) and move them
    (--auto or --map), as `run` does; the manifest and inventory go beside the state (--checkpoint). A rerun
    when all is done writes nothing and exits 0."""
    opts.update(dict.fromkeys(_DISCOVER_SAYS))
    if check and (plan_only or opts["plan_file"] is not None):
        raise click.UsageError("--check watches; it goes with neither --plan nor --plan-only")
    if opts["plan_file"] is not None:  # an approved plan: exactly its manifest (its state beside), no discovery
        manifest = Path(read_plan(opts["plan_file"], opts["plan_sha256"]).manifest_path)
        result, code, _ = execute(manifest, opts, job="reconcile")
        print_result(result)
        sys.exit(code)
    state = opts["checkpoint"] = opts["checkpoint"] or DEFAULT_STATE
    sources, criteria = sources_and_criteria(opts)
    if not (criteria.auto or criteria.map_file):
        raise click.UsageError("reconcile moves domains: give --auto or --map FILE (discover lists them)")
    if check:
        sys.exit(reconcile_check(opts, state, sources, criteria))
    manifest, inventory, plan_out = reconcile_paths(state)
    logs.configure(opts["log_format"], opts["log_level"])
    run_id = new_run_id()
    logs.bind(run_id=run_id, command="reconcile", checkpoint=state)
    found = reconcile_discovery(engine_settings(opts, 0, run_id), sources, criteria, state)
    if not found.rows:
        logs.say(
            f"reconcile: nothing to do: {found.domains} custom domains in {found.accounts} accounts checked, none "
            f"selected; inventory: {inventory}"
            if not found.code
            else f"reconcile: nothing moved: {found.summary}"
        )
        watch = Watch(opts, "reconcile", manifest, nowhere=found.cannot_move)  # metrics; nowhere to go: told
        aws = engine_settings(opts, 0, run_id).aws
        watch.discovered(default_paths(manifest)[1], found.code, run_id, aws, state)
        sys.exit(found.code)
    logs.say(f"reconcile: {found.summary}")
    if plan_only:
        opts.update(out=plan_out, allowed_accounts=None, organization=False)
        result, code, _ = execute(manifest, opts, read_only=True, job="reconcile", nowhere=found.cannot_move)
        print_result(result, read_only=True)
        digest = hashlib.sha256(plan_out.read_bytes()).hexdigest() if plan_out.is_file() else "DIGEST"
        logs.say(
            f"reconcile: plan saved: {plan_out}; once approved, apply exactly it with: "
            f"cognito-fleet reconcile --plan {plan_out} --plan-sha256 {digest}"
        )
        sys.exit(code or found.code)
    result, code, _ = execute(manifest, opts, job="reconcile", nowhere=found.cannot_move)
    print_result(result)
    sys.exit(code or found.code)
