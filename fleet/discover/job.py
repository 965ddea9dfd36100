"""The `discover` command: read the inputs, take the inventory, select, write the outputs."""

from __future__ import annotations

import collections
from collections.abc import Sequence
from pathlib import Path

import anyio

from fleet import events as logs
from fleet.aws.endpoints import summary as endpoint_summary
from fleet.aws.outage import OutageEvent, log_fields
from fleet.discover.inputs import Account, DiscoverError, organization_accounts, read_accounts, read_map
from fleet.discover.inventory import Discoverer
from fleet.discover.output import write_outputs
from fleet.discover.select import CANNOT_MOVE, Selection
from fleet.manifest import cognito_regions, parse
from fleet.migrate.engine import EngineSettings, open_runtime


def run_discovery(
    settings: EngineSettings,
    accounts_file: Path | None,
    organization: bool,
    ous: Sequence[str],
    exclude: Sequence[str],
    regions: Sequence[str],
    map_file: Path | None,
    expiring_within: float,
    out: Path,
    inventory_path: Path,
    page_size: int = 60,
) -> tuple[int, str]:
    """The `discover` command: (exit code, summary). Bad input raises DiscoverError before any call."""
    unknown = [r for r in regions if r not in cognito_regions()]
    if unknown or not regions:
        raise DiscoverError(f"--regions: not Cognito regions: {', '.join(unknown) or '(none given)'}")
    mapping = read_map(map_file) if map_file else None
    listed = read_accounts(accounts_file) if accounts_file else []
    selection = Selection(mapping, expiring_within, settings.min_validity_days)

    def outage(event: OutageEvent) -> None:
        logs.event("outage", "warning", **log_fields(event))

    async def go() -> tuple[list[Account], Discoverer]:
        # Discover keeps no state: an outage past --outage-patience leaves the rest unread (exit 1).
        async with open_runtime(settings, regions, on_outage=outage) as aws:
            hub, discoverer = aws.hub, Discoverer(aws.calls, selection, settings.account_concurrency, page_size)
            logs.start_run(
                run_id=settings.aws.session_name.removeprefix("cognito-fleet-"),
                command="discover",
                hub=hub.arn,
                endpoints=endpoint_summary(hub.endpoints),
                regions=list(regions),
                source="organization" if not listed else str(accounts_file),
                targets="map" if mapping is not None else "auto",
                out=str(out),
            )
            accounts = listed or await organization_accounts(hub, aws.calls, ous, exclude)
            accounts = [a for a in accounts if a.account_id not in set(exclude)]
            await discoverer.run(hub, accounts, regions)
            return accounts, discoverer

    accounts, discoverer = anyio.run(go)
    rows = write_outputs(discoverer.inventory, out, inventory_path, accounts, discoverer.now)
    found = discoverer.inventory.found
    errors = [f for f in found if f.selection == "error"]
    domains = [f for f in found if f.domain]
    summary = (
        f"{len(accounts)} accounts x {len(regions)} regions: {len(domains)} custom domains, {rows} selected, "
        f"{len(errors)} errors; manifest: {out}; inventory: {inventory_path}"
    )
    unreadable = [f for f in errors if not f.domain]  # an account, or an account's region, not read at all
    if unreadable:
        summary += "; could not read: " + "; ".join(
            f"{f.account_id}{'/' + f.region if f.region else ''} ({f.error_code}: {f.error_message})"
            for f in unreadable
        )
    # Domains that must move (expiring, or mapped) and cannot: tomorrow's outages, so not a success.
    stuck = [f for f in found if f.selection in CANNOT_MOVE]
    if stuck:
        summary += f"; {len(stuck)} domains must move and cannot (see the inventory's error_message): " + ", ".join(
            f"{f.domain} ({f.selection}: {f.error_code})" for f in stuck[:10]
        )
    if rows:
        parse(out)  # what discover writes must be a manifest that validate and run accept
    if not rows and not errors and not stuck:
        summary += "; nothing selected: nothing to do"
    code = 1 if errors or stuck else 0
    selections = collections.Counter(f.selection for f in found)
    logs.finish_run(
        code,
        selections=dict(selections),
        selected=rows,
        errors=len(errors),
        cannot_move=len(stuck),
        unreadable=[f"{f.account_id}/{f.region}".rstrip("/") for f in unreadable],
        manifest=str(out),
        inventory=str(inventory_path),
    )
    return code, summary
