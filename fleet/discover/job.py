"""The `discover` command: read the inputs, take the inventory, select, write the outputs."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

from fleet import events as logs
from fleet.aws.edge import EdgeChecker
from fleet.aws.endpoints import summary as endpoint_summary
from fleet.aws.outage import OutageEvent, log_fields
from fleet.discover.inputs import Account, DiscoverError, organization_accounts, read_accounts, read_map
from fleet.discover.inventory import Discoverer, Found
from fleet.discover.output import write_outputs
from fleet.discover.select import AUTO_HORIZON_DAYS, CANNOT_MOVE, MATCHED, Selection
from fleet.manifest import cognito_regions, parse
from fleet.migration.carry import carry, unproven
from fleet.migration.engine import EngineSettings, open_runtime


@dataclass(frozen=True, slots=True)
class Sources:
    """What discover reads: the accounts (a file, or the Organization and its OUs, less some) and the regions."""

    accounts_file: Path | None
    organization: bool
    ous: Sequence[str]
    exclude: Sequence[str]
    regions: Sequence[str]


@dataclass(frozen=True, slots=True)
class Criteria:
    """What is wrong with a certificate (the domains to move) and where they go (--map, --auto, or nowhere: the
    inventory alone)."""

    map_file: Path | None = None
    auto: bool = False
    issuers: tuple[str, ...] = ()
    imported: bool = False
    expiring_within_days: float | None = None

    def selection(self, min_validity_days: float) -> Selection:
        """``--auto`` with no criterion keeps its meaning: domains whose certificate expires within 30 days."""
        horizon = self.expiring_within_days
        if self.auto and horizon is None and not self.issuers and not self.imported:
            horizon = AUTO_HORIZON_DAYS
        mapping = read_map(self.map_file) if self.map_file else None
        return Selection(mapping, horizon, min_validity_days, self.issuers, self.imported, self.auto)


@dataclass(frozen=True, slots=True)
class Discovered:
    """What discover did: its exit code and summary line, the manifest's rows, the domains and accounts read."""

    code: int
    summary: str
    rows: int
    domains: int
    accounts: int
    cannot_move: tuple[tuple[str, str], ...] = ()  # selected domains with nowhere to go: (domain, why)


def reconcile_paths(state: Path) -> tuple[Path, Path, Path]:
    """reconcile's files beside its state: fleet.checkpoint.sqlite -> fleet.csv (the manifest; run's report
    and state defaults beside it are then fleet.report.csv and this state), fleet.inventory.csv, fleet.plan.json."""
    name = state.name.removesuffix(".sqlite").removesuffix(".checkpoint")
    name = state.stem if name == state.name else name
    return tuple(state.with_name(name + end) for end in (".csv", ".inventory.csv", ".plan.json"))  # type: ignore[return-value]


def reconcile_discovery(settings: EngineSettings, sources: Sources, criteria: Criteria, state: Path) -> Discovered:
    """reconcile's first half: the manifest and inventory beside ``state``, with the previous manifest's rows that
    were written and are not yet proven carried over (discover no longer selects them: they are on their target)."""
    manifest, inventory, _plan = reconcile_paths(state)
    carried = unproven(manifest, state)  # before discover rewrites the manifest
    found = run_discovery(settings, sources, criteria, manifest, inventory)
    added = carry(manifest, carried) if carried else 0
    if not added:
        return found
    said = f"{found.summary}; {added} written earlier and not yet proven: carried over to be proven"
    return dataclasses.replace(found, rows=found.rows + added, summary=said)


def run_discovery(
    settings: EngineSettings,
    sources: Sources,
    criteria: Criteria,
    out: Path | None,
    inventory_path: Path,
    page_size: int = 60,
) -> Discovered:
    """The `discover` command (and reconcile's first half). Bad input raises DiscoverError before any call;
    ``out`` None (or no --map/--auto): the inventory alone."""
    regions = sources.regions
    unknown = [r for r in regions if r not in cognito_regions()]
    if unknown or not regions:
        raise DiscoverError(f"--regions: not Cognito regions: {', '.join(unknown) or '(none given)'}")
    selection = criteria.selection(settings.min_validity_days)
    listed = read_accounts(sources.accounts_file) if sources.accounts_file else []
    out = out if selection.targets else None

    def outage(event: OutageEvent) -> None:
        logs.event("outage", "warning", **log_fields(event))

    async def go() -> tuple[list[Account], Discoverer]:
        # Discover keeps no state: an outage past --outage-patience leaves the rest unread (exit 1).
        async with open_runtime(settings, regions, on_outage=outage) as aws:
            # What the edge serves is information here (run proves it): one try, so an edge out of reach costs seconds.
            edge = EdgeChecker(dataclasses.replace(settings.edge, tries=1), aws.clock) if settings.edge.check else None
            hub = aws.hub
            discoverer = Discoverer(aws.calls, selection, settings.account_concurrency, page_size, edge)
            logs.start_run(
                run_id=settings.aws.session_name.removeprefix("cognito-fleet-"),
                command="discover",
                hub=hub.arn,
                endpoints=endpoint_summary(hub.endpoints),
                regions=list(regions),
                source="organization" if not listed else str(sources.accounts_file),
                targets="map" if selection.mapping is not None else "auto" if selection.auto else "none",
                selection={
                    "issuers": list(selection.issuers),
                    "imported": selection.imported,
                    "expiring_within_days": selection.expiring_within_days,
                },
                out=str(out) if out else None,
                **({"settings_file": settings.settings_file.facts()} if settings.settings_file else {}),
            )
            accounts = listed or await organization_accounts(hub, aws.calls, sources.ous, sources.exclude)
            accounts = [a for a in accounts if a.account_id not in set(sources.exclude)]
            await discoverer.run(hub, accounts, regions)
            return accounts, discoverer

    accounts, discoverer = anyio.run(go)
    rows = write_outputs(discoverer.inventory, out, inventory_path, accounts, discoverer.now)
    return _finish(discoverer.inventory.found, len(accounts), len(regions), rows, out, inventory_path)


def _finish(
    found: Sequence[Found], accounts: int, regions: int, rows: int, out: Path | None, inventory_path: Path
) -> Discovered:
    """The exit code and the one-line summary of what was found, logged as the run's end."""
    errors = [f for f in found if f.selection == "error"]
    domains = [f for f in found if f.domain]
    chosen = f"{rows} selected" if out else f"{sum(f.selection == MATCHED for f in found)} match the selection"
    summary = (
        f"{accounts} accounts x {regions} regions: {len(domains)} custom domains, {chosen}, "
        f"{len(errors)} errors; manifest: {out or 'none (no --map/--auto)'}; inventory: {inventory_path}"
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
    if rows and out is not None:
        parse(out)  # what discover writes must be a manifest that validate and run accept
    if out and not rows and not errors and not stuck:
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
        manifest=str(out) if out else None,
        inventory=str(inventory_path),
    )
    nowhere = tuple((f.domain, f"{f.selection}: {f.error_code}") for f in stuck)
    return Discovered(code, summary, rows, len(domains), accounts, nowhere)
