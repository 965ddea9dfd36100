"""`reconcile --check`: the watcher with reconcile's settings. It reads everything and writes nothing: discovery
goes to a scratch directory (not beside the state), the state is only read (its domains, its holds), and the
check is `plan --check` of what the selection picks now plus every domain the state manages. Exit 1 while any is
off its target, not served at its edge, or selected with nowhere to go."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import click

from fleet.cli import logs
from fleet.cli.observing import Watch
from fleet.cli.option_groups import engine_settings
from fleet.cli.run_commands import execute
from fleet.discover.job import Criteria, Sources, reconcile_paths, run_discovery
from fleet.manifest import parse
from fleet.migration.carry import carry
from fleet.migration.pipeline import default_paths, new_run_id
from fleet.records.report import summary_line
from fleet.state.checkpoint import Checkpoint


def managed(state: Path) -> list[Any]:
    """The domains the state holds an outcome for, each to its last target (read; nothing is written)."""
    if not state.is_file():
        return []
    checkpoint = Checkpoint(state, create=False)
    try:
        return checkpoint.managed()
    finally:
        checkpoint.close()


def reconcile_check(opts: dict[str, Any], state: Path, sources: Sources, criteria: Criteria) -> int:
    """The exit code of the watch (0: every domain on its target and served)."""
    logs.configure(opts["log_format"], opts["log_level"])
    run_id = new_run_id()
    logs.bind(run_id=run_id, command="reconcile", checkpoint=state)
    named = reconcile_paths(state)[0]  # what the metrics call this fleet: reconcile's manifest beside the state
    with tempfile.TemporaryDirectory(prefix="cognito-fleet-check-") as scratch:
        manifest = Path(scratch) / "check.csv"
        settings = engine_settings(opts, 0, run_id)
        found = run_discovery(settings, sources, criteria, manifest, manifest.with_suffix(".inventory.csv"))
        carry(manifest, managed(state))
        if not parse(manifest).rows:
            logs.say(f"reconcile --check: nothing selected and nothing managed: {found.summary}")
            watch = Watch(opts, "check", named, nowhere=found.cannot_move)
            watch.discovered(default_paths(named)[1], found.code, run_id, settings.aws, state)
            return found.code
        checking = {**opts, "check": True, "checkpoint": state, "report": Path(scratch) / "check.plan.csv", "out": None}
        checking.update(allowed_accounts=None, organization=False)
        result, code, lines = execute(manifest, checking, read_only=True, nowhere=found.cannot_move, as_manifest=named)
    if not logs.json_mode():
        for line in [summary_line(result.counts), *result.edge_lines(True), *lines]:
            click.echo(line)
    return code or found.code
