"""`reconcile --plan-only` and `reconcile --plan`: the change board's pair.

The plan is made from a copy of the manifest discover wrote, ``NAME.plan.manifest.csv`` beside the plan: every
reconcile rewrites ``NAME.csv`` (one that finds nothing leaves a header), so a plan made from it would stop matching
its manifest (PlanError) at the next scheduled run. The copy is written by `--plan-only` only; `--plan` runs exactly
it, into reconcile's state and report (NAME.checkpoint.sqlite, NAME.report.csv)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from fleet.cli import logs
from fleet.cli.observing import Watch
from fleet.cli.option_groups import engine_settings
from fleet.cli.run_commands import execute, print_result
from fleet.discover.job import Discovered, reconcile_paths, state_beside
from fleet.files import atomic_writer
from fleet.migration.pipeline import default_paths, new_run_id
from fleet.records.plan_file import read_plan


def save_plan(opts: dict[str, Any], state: Path, found: Discovered) -> int:
    """Plan what discover selected, read-only: NAME.plan.json (+ its report NAME.plan.csv) and the manifest it
    names, NAME.plan.manifest.csv; says how to apply it. The exit code."""
    files = reconcile_paths(state)
    with atomic_writer(files.plan_manifest) as fh:  # byte for byte: the plan pins its SHA-256
        fh.write(files.manifest.read_bytes().decode("utf-8"))
    opts.update(out=files.plan, report=opts["report"] or files.plan.with_suffix(".csv"))
    opts.update(allowed_accounts=None, organization=False)
    nowhere, named = found.cannot_move, files.manifest  # the metrics name reconcile's fleet, as its runs do
    result, code, _ = execute(files.plan_manifest, opts, True, "reconcile", nowhere, as_manifest=named)
    print_result(dataclasses.replace(result, plan_out=None), read_only=True)  # how to apply it: the line below
    digest = hashlib.sha256(files.plan.read_bytes()).hexdigest() if result.plan_out else "DIGEST"
    logs.say(
        f"reconcile: plan saved: {files.plan} (made from {files.plan_manifest}); once approved, apply exactly it "
        f"with: cognito-fleet reconcile --plan {files.plan} --plan-sha256 {digest}"
    )
    return code or found.code


def apply_plan(opts: dict[str, Any]) -> int:
    """Run exactly an approved plan's manifest, no discovery. The state: --checkpoint, else the one beside the
    plan's manifest (NAME.checkpoint.sqlite); a plan that cannot be used (not the approved file: PlanError) is the
    command's error, told like any other. The exit code."""
    plan_file: Path = opts["plan_file"]
    run_id = new_run_id()
    state = opts["checkpoint"] or state_beside(plan_file)  # until the plan is read: reconcile's files sit together
    logs.bind(run_id=run_id, command="reconcile", checkpoint=state)
    named = reconcile_paths(state).manifest
    watch = Watch(opts, "reconcile", named)
    with watch.ending(default_paths(named)[1], state, run_id, lambda: engine_settings(opts, 0, run_id).aws):
        manifest = Path(read_plan(plan_file, opts["plan_sha256"]).manifest_path)
    state = opts["checkpoint"] = opts["checkpoint"] or state_beside(manifest)
    named = reconcile_paths(state).manifest
    opts["report"] = opts["report"] or default_paths(named)[1]
    logs.bind(checkpoint=state)
    result, code, _ = execute(manifest, opts, job="reconcile", as_manifest=named)
    print_result(result)
    return code
