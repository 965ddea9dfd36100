"""`discover`: build the manifest (or the inventory alone) from an inventory of many accounts; the options it
shares with `reconcile` (what to read, what to select)."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import click

from fleet.cli import logs, options
from fleet.cli.help_sections import SectionedCommand
from fleet.cli.option_groups import Decorator, common_options, edge_options, engine_settings
from fleet.discover.job import Criteria, Sources
from fleet.discover.select import AUTO_HORIZON_DAYS
from fleet.migration.pipeline import new_run_id


def apply(decorators: list[Decorator]) -> Decorator:
    """Several click options as one decorator, in the order listed (as `--help` shows them)."""
    return lambda fn: functools.reduce(lambda f, option: option(f), reversed(decorators), fn)


source_options = apply(  # what discover reads (reconcile too)
    [
        click.option(
            "--accounts",
            "accounts_file",
            type=click.Path(dir_okay=False, exists=True, path_type=Path),
            help="One account id per line, or a CSV account_id[,role_arn,external_id].",
        ),
        click.option("--organization", is_flag=True, help="Take the ACTIVE accounts of the hub's AWS Organization."),
        click.option("--ou", "ous", multiple=True, help="With --organization: only these OUs and their children."),
        click.option("--exclude", multiple=True, help="Account ids to leave out (repeatable)."),
        click.option("--regions", help="Comma-separated regions to inventory (required)."),
    ]
)

selection_options = apply(  # which domains move (what is wrong with their certificate), and where they go
    [
        click.option(
            "--issuer",
            "issuers",
            multiple=True,
            help="Only domains on a certificate from this CA (ACM's Issuer; repeatable, case-insensitive): a "
            "distrusted CA. With --auto the replacement is from another CA and need not outlive the current one.",
        ),
        click.option("--imported", is_flag=True, help="Only domains on an IMPORTED certificate (ACM never renews)."),
        click.option(
            "--expiring-within",
            type=click.FloatRange(0, 3650),
            default=None,
            help=f"Only domains whose certificate expires within this many days [default: any; --auto with no "
            f"other criterion: {AUTO_HORIZON_DAYS:g}].",
        ),
        click.option(
            "--map",
            "map_file",
            type=click.Path(dir_okay=False, exists=True, path_type=Path),
            help="CSV old_certificate_arn,new_certificate_arn: move domains on an old certificate to the new.",
        ),
        click.option(
            "--auto",
            is_flag=True,
            help="For the selected domains, pick the newest suitable ISSUED certificate of the account.",
        ),
    ]
)


def sources_and_criteria(opts: dict[str, Any]) -> tuple[Sources, Criteria]:
    """The parsed source and selection options (UsageError for a wrong combination); pops them from ``opts``."""
    accounts_file, organization = opts.pop("accounts_file"), opts.pop("organization")
    if bool(accounts_file) == organization:
        raise click.UsageError("give exactly one of --accounts FILE and --organization")
    if not opts["regions"]:
        raise click.UsageError("give --regions (a comma list), on the command line or in the settings file")
    map_file, auto = opts.pop("map_file"), opts.pop("auto")
    if map_file and auto:
        raise click.UsageError("give at most one of --map FILE and --auto")
    sources = Sources(
        accounts_file, organization, opts.pop("ous"), opts.pop("exclude"), options.split_list(opts.pop("regions"))
    )
    criteria = Criteria(map_file, auto, tuple(opts.pop("issuers")), opts.pop("imported"), opts.pop("expiring_within"))
    return sources, criteria


@click.command(
    cls=SectionedCommand,
    epilog="""\b
Exit codes:
  0  every account and region was read; the manifest lists the selected domains (maybe none)
  1  some accounts, regions or domains could not be read, or selected domains have nowhere to go (see the
     inventory)
  2  usage error, a bad accounts/map file, or the hub identity not confirmed by STS""",
)
@source_options
@selection_options
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Manifest to write (with --map or --auto; without them discover writes the inventory alone).",
)
@click.option(
    "--inventory",
    "inventory_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Inventory CSV (+ .jsonl): every domain, its certificate (issuer, serial, type, key, expiry), what its "
    "edge serves, and whether and why it is selected [default: beside --out, NAME.inventory.csv]",
)
@common_options
@edge_options
def discover(out: Path | None, inventory_path: Path | None, **opts: Any) -> None:
    """Inventory the custom domains of many accounts and write the manifest that migrates them (or, without
    --map/--auto, the inventory alone)."""
    from fleet.discover.job import run_discovery

    sources, criteria = sources_and_criteria(opts)
    if (criteria.map_file or criteria.auto) and out is None:
        raise click.UsageError("--map and --auto write a manifest: give --out FILE")
    if out is None and inventory_path is None:
        raise click.UsageError("give --inventory FILE (or --out FILE)")
    logs.configure(opts["log_format"], opts["log_level"])
    run_id = new_run_id()
    logs.bind(run_id=run_id, command="discover", out=out)
    if inventory_path is None:
        assert out is not None
        inventory_path = out.with_name(out.with_suffix("").name + ".inventory.csv")
    done = run_discovery(engine_settings(opts, 0, run_id), sources, criteria, out, inventory_path)
    logs.say(done.summary)
    sys.exit(done.code)
