"""`cognito-fleet report`: one change record from a run's report, several (the shards of a fleet), or a plan file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from fleet.cli.s3_records import fetched
from fleet.cli.state_options import LocationArg, state_aws, state_aws_options
from fleet.files import atomic_writer
from fleet.migration.state_backend import store_for
from fleet.records.change_record import Record, load_many
from fleet.records.html import html
from fleet.records.markdown import markdown
from fleet.records.own_files import CHANGE_RECORD, refuse_foreign
from fleet.state.s3_objects import S3Location

# --- the command --------------------------------------------------------------------------------------------

RENDERERS: dict[str, Callable[[Record], str]] = {"markdown": markdown, "html": html}


@click.command("report")
@click.argument("reports", nargs=-1, required=True, type=LocationArg(exists=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(RENDERERS)),
    default="markdown",
    show_default=True,
    help="markdown: for a ticket; html: one self-contained page (inline CSS and SVG charts, no script).",
)
@click.option("--out", type=LocationArg(), help="File (or s3://BUCKET/KEY) to write [default: stdout].")
@click.option(
    "--hub",
    metavar="ARN",
    help="Override the hub (calling) identity in the header [default: what the run recorded beside its report, "
    "NAME.report.run.json].",
)
@state_aws_options
def report_command(
    reports: tuple[Path | S3Location, ...], fmt: str, out: Path | S3Location | None, hub: str | None, **aws: Any
) -> None:
    """Render REPORTS (CSVs `run` or `plan` wrote: one, or the shards of a fleet) as one change record: failures
    first, then every domain once (in several reports: the later one counts). A plan file (`plan --out`) renders
    as the plan to approve: what will change."""
    from fleet.records.plan_record import is_plan, load_plan_record  # the plan's record builds on this module

    settings = state_aws(aws)
    with fetched(reports, settings) as local:  # an s3:// report: read with the files beside it
        if any(is_plan(p) for p in local):
            if len(local) > 1:
                raise click.UsageError("a plan file is rendered alone: give one PLAN.json")
            record: Record = load_plan_record(local[0])
        else:
            record = load_many(list(local), hub)
    text = RENDERERS[fmt](record)
    if out is None:
        click.echo(text, nl=False)
        return
    if isinstance(out, S3Location):
        store_for(out, settings).put(out.key, text.encode())
    else:
        refuse_foreign(out, CHANGE_RECORD)  # a change record replaces only a change record (or nothing)
        with atomic_writer(out) as fh:
            fh.write(text)
    origin = ", ".join(map(str, reports))
    click.echo(f"{out}: change record ({fmt}) of {len(record.entries)} domains from {origin}")
