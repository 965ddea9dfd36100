"""`discover`: build the manifest from an inventory of many accounts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from fleet.cli import logs, options
from fleet.cli.help_sections import SectionedCommand
from fleet.cli.option_groups import DISCOVER, common_options, engine_settings
from fleet.migration.pipeline import (
    new_run_id,
)


@click.command(
    cls=SectionedCommand,
    epilog="""\b
Exit codes:
  0  every account and region was read; the manifest lists the selected domains (maybe none)
  1  some accounts, regions or domains could not be read (see the inventory)
  2  usage error, a bad accounts/map file, or the hub identity not confirmed by STS""",
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
