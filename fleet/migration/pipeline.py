"""manifest -> hub check -> lock -> checkpoint -> engine (supervised) -> report: the whole job, as `run` does it."""

from __future__ import annotations

import collections
import dataclasses
import functools
import os
import secrets
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec

import anyio

from fleet.aws.credentials import Hub
from fleet.aws.hub_check import checked_hub
from fleet.aws.stop import Stop
from fleet.clock import Clock, SystemClock
from fleet.errors import EXIT_FAILED_ROWS, FleetError
from fleet.manifest import Manifest, Row, parse
from fleet.migration import allow_list
from fleet.migration.engine import EngineSettings, Observer, Tally, run_rows
from fleet.migration.result import RunResult as RunResult
from fleet.migration.result import pending_ages
from fleet.migration.row import Mode
from fleet.migration.run_record import for_state, run_info, write_run_record
from fleet.migration.state_backend import StatePath, exists, locked, open_state, opened
from fleet.migration.supervise import StopPolicy as StopPolicy
from fleet.migration.supervise import supervise as supervise
from fleet.outcome import Status
from fleet.records.plan_file import PlannedDomain, write_plan
from fleet.records.report import EdgeTally, jsonl_path, record, write_report
from fleet.shard import RowFilter, Shard
from fleet.state.checkpoint import Checkpoint
from fleet.state.holds import Hold


def default_paths(manifest: str | Path, shard: Shard | None = None) -> tuple[Path, Path]:
    """Checkpoint and report live beside the manifest: prod.csv -> prod.checkpoint.sqlite, prod.report.csv
    (prod.shard-1-of-4.checkpoint.sqlite ... for a shard)."""
    m = Path(manifest)
    stem = str(m.with_suffix("") if m.suffix else m) + (f".{shard.suffix}" if shard else "")
    return Path(f"{stem}.checkpoint.sqlite"), Path(f"{stem}.report.csv")


def load(manifest_path: str | Path, shard: Shard | None = None, only: RowFilter | None = None) -> Manifest:
    """Parse and validate the whole manifest (ManifestError), then keep the shard's rows and the filter's."""
    manifest = parse(manifest_path)
    rows: list[Row] | tuple[Row, ...] = manifest.rows
    if shard is not None:
        rows = shard.select(rows)
    if only is not None:
        rows = only.select(rows)
    if rows is manifest.rows:
        return manifest
    return Manifest(manifest.path, tuple(rows))


def new_run_id() -> str:
    """When and where the run started, and a random part: unique in the state's history even for two runs of
    one process in the same second."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{os.getpid()}-{secrets.token_hex(3)}"


Approve = Callable[[dict[str, object]], bool]


class NotApproved(FleetError):
    """The operator answered no at the prompt: nothing was written."""

    exit_code = EXIT_FAILED_ROWS


async def migrate_async(
    source: Manifest | str | Path,
    checkpoint_path: StatePath,
    report_path: Path,
    settings: EngineSettings,
    observer: Observer | None = None,
    policy: StopPolicy | None = None,
    shard: Shard | None = None,
    clock: Clock | None = None,
    run_id: str | None = None,
    approve: Approve | None = None,
) -> RunResult:
    """Check the hub (HubUnavailable), lock (LockHeld), open the checkpoint (CheckpointMismatch), run, report:
    the run's one body, which `migrate` runs in its own event loop and tests await (on virtual time, say).

    ``source`` is the parsed manifest, or its path (parsed here: ManifestError). Nothing is locked or written
    before the hub is confirmed; ``approve`` (the terminal's y/N) sees the hub, the fleet and the writes a read-only
    plan found (how many, in how many accounts) before anything is written, and asks only when there are some; a no
    raises NotApproved.
    """
    manifest = source if isinstance(source, Manifest) else load(source, shard)
    stop, clock, run_id = Stop(), clock or SystemClock(), run_id or new_run_id()
    held = _fleet_hold(checkpoint_path, settings)
    if held is not None:  # an operator held the fleet: no call at all, not even the hub's
        return RunResult(
            collections.Counter(), report_path, jsonl_path(report_path), checkpoint_path, run_id=run_id, fleet_held=held
        )

    edges = EdgeTally() if settings.edge.check else None

    async def job() -> tuple[collections.Counter[str], int, Tally, tuple[tuple[str, float], ...]]:
        async with checked_hub(settings.aws, settings.policy, clock.sleep, manifest.regions) as hub:  # noqa: SIM117
            async with locked(checkpoint_path, settings.aws, run_id, stop, clock):
                more = {"plan": plan_facts(settings)} if settings.approved else {}
                report = str(report_path)
                info = run_info("run", run_id, hub, manifest, settings, state=checkpoint_path, report=report, **more)
                if approve is not None:
                    writes = await writes_ahead(manifest, checkpoint_path, settings, hub, clock)
                    if not approve({**info, "writes": len(writes), "write_accounts": len(set(writes))}):
                        raise NotApproved("not confirmed at the prompt: nothing was written")
                checkpoint = open_state(checkpoint_path, settings.aws, run_id)
                try:
                    mode = checkpoint.begin(run_id, manifest.path, len(manifest.rows), for_state(info))
                    if observer is not None:
                        observer.started({**info, "mode": mode, "checkpoint": str(checkpoint_path)})
                    stop_policy = policy or StopPolicy()
                    tally = await supervise(
                        manifest.rows, checkpoint, settings, hub, observer, stop_policy, stop, clock
                    )
                    reason = stop.reason if stop.aborted else None
                    counts = write_report(manifest.rows, checkpoint, report_path, reason, edges)
                    # Every row ended (failed ones too): the next run starts a new pass and converges.
                    checkpoint.finish(dict(counts), complete=not counts[str(Status.SKIPPED)])
                    tally.writes = checkpoint.writes()
                    write_run_record(report_path, {**(checkpoint.run_info(run_id) or {}), "writes": tally.writes})
                    ages = pending_ages(manifest.rows, checkpoint, clock.now()) if counts[str(Status.PENDING)] else ()
                    return counts, checkpoint.drifted(), tally, ages
                finally:
                    checkpoint.close()

    counts, drift, tally, ages = await job()
    return RunResult(
        counts,
        report_path,
        jsonl_path(report_path),
        checkpoint_path,
        stop.reason,
        stop.aborted,
        drift,
        run_id,
        edges,
        tally=tally,
        pending=ages,
        stuck_after=settings.mode.stuck_after,
    )


P = ParamSpec("P")


def _in_own_loop(job: Callable[P, Coroutine[Any, Any, RunResult]]) -> Callable[P, RunResult]:
    """``job`` run in an event loop of its own (what the CLI calls); tests await ``job`` itself."""

    @functools.wraps(job)
    def run(*args: P.args, **kwargs: P.kwargs) -> RunResult:
        return anyio.run(functools.partial(job, *args, **kwargs))

    return run


migrate = _in_own_loop(migrate_async)  # what `cognito-fleet run` does


def plan_facts(settings: EngineSettings) -> dict[str, object]:
    """What run_started says of the plan a run applies: which file (its SHA-256, to match the approved one), and
    whether that SHA-256 was pinned (--plan-sha256)."""
    assert settings.approved is not None
    return settings.approved.facts()


def _fleet_hold(checkpoint_path: StatePath, settings: EngineSettings) -> str | None:
    """The state's fleet hold, as the one line a held run prints; None when not held (or no state yet)."""
    if not exists(checkpoint_path, settings.aws):
        return None
    with opened(checkpoint_path, settings.aws) as state:
        hold = state.fleet_hold()
        return None if hold is None else hold.message(str(checkpoint_path))


def _holds(checkpoint_path: StatePath, settings: EngineSettings) -> dict[str, Hold]:
    if not exists(checkpoint_path, settings.aws):
        return {}
    with opened(checkpoint_path, settings.aws) as state:
        return state.holds()


async def writes_ahead(
    manifest: Manifest, checkpoint_path: StatePath, settings: EngineSettings, hub: Hub, clock: Clock
) -> list[str]:
    """What the run would write now (for the terminal's question): the accounts of the rows a plan finds to write,
    one per write, leaving out rows a rollback holds. Read-only: the plan records into a throw-away state."""
    holds = _holds(checkpoint_path, settings)
    rows = [r for r in manifest.rows if r.domain not in holds or holds[r.domain].certificate_arn == r.certificate_arn]
    planning = dataclasses.replace(settings, mode=Mode(plan=True), canary=0, max_failures=None)
    with tempfile.TemporaryDirectory(prefix="cognito-fleet-ask-") as scratch:
        scratch_state = Checkpoint(Path(scratch) / "plan.sqlite")
        try:
            scratch_state.begin("ask", manifest.path, len(rows))
            await run_rows(rows, scratch_state, planning, hub, None, clock)
            planned = [scratch_state.get(r.domain) for r in rows]
            return [r.account_id for r, o in zip(rows, planned, strict=True) if o and o.status is Status.PLANNED]
        finally:
            scratch_state.close()


@dataclass(frozen=True, slots=True)
class Allowed:
    """plan's allow-list: manifest accounts outside it are warned about (``allow_list``)."""

    accounts: frozenset[str] | None = None
    organization: bool = False  # the hub's organization's ACTIVE accounts


async def warn_outside(manifest: Manifest, allowed: Allowed, hub: Hub, settings: EngineSettings, clock: Clock) -> None:
    from fleet.aws.calls import Calls
    from fleet.aws.limits import Limits
    from fleet.aws.organizations import active_accounts
    from fleet.aws.retry import classify
    from fleet.events import get_logger

    lists: list[tuple[str, frozenset[str]]] = []
    if allowed.accounts is not None:
        lists.append(("--allowed-accounts", allowed.accounts))
    if allowed.organization:
        calls = Calls(Limits(settings.concurrency, settings.rate_per_account), settings.policy, clock)
        try:
            members = await active_accounts(hub, calls, (), ())
        except Exception as exc:  # not the management account, or no organization: say so, plan nothing
            failure = classify(exc)
            raise FleetError(
                f"--organization: cannot list the hub's organization ({failure.code}: {failure.message}); "
                "use --allowed-accounts instead"
            ) from None
        lists.append(("the hub's organization", frozenset(members)))
    for source, accounts in lists:
        strangers = allow_list.outside(manifest.accounts, accounts)
        if strangers:
            get_logger().warning(
                "accounts_outside_allow_list",
                accounts=strangers,
                source=source,
                message=allow_list.warning(strangers, source),
            )


def plan(
    source: Manifest | str | Path,
    report_path: Path,
    settings: EngineSettings,
    observer: Observer | None = None,
    shard: Shard | None = None,
    clock: Clock | None = None,
    run_id: str | None = None,
    allowed: Allowed | None = None,
    out: Path | None = None,
    state: StatePath | None = None,
    watch: bool = False,
) -> RunResult:
    """Read-only: describe and check every row, write nothing; rows end planned / unchanged / failed.

    Plan records into a throw-away state; the run's ``state`` is only read, for its holds: a domain a rollback
    holds is planned ``held`` (as the run would leave it), a held fleet plans nothing (as the run would do
    nothing), unless ``watch`` (the watcher, `plan --check`: a hold stops writes, never watching; the result
    says held). ``out``: also write the plan file (fleet.records.plan_file) that `run --plan` applies, unless the
    plan stopped early (rows not looked at).
    """
    manifest = source if isinstance(source, Manifest) else load(source, shard)
    held = _fleet_hold(state, settings) if state is not None else None
    if held is not None and not watch:
        return RunResult(collections.Counter(), report_path, jsonl_path(report_path), Path(), fleet_held=held)
    holds = _holds(state, settings) if state is not None else {}
    settings = dataclasses.replace(settings, mode=Mode(plan=True), canary=0, max_failures=None)
    stop, clock, run_id = Stop(), clock or SystemClock(), run_id or new_run_id()
    edges = EdgeTally() if settings.edge.check else None

    async def job() -> collections.Counter[str]:
        made_at = clock.now()  # the plan's age counts from before its first look at the fleet
        async with checked_hub(settings.aws, settings.policy, clock.sleep, manifest.regions) as hub:
            if allowed is not None:
                await warn_outside(manifest, allowed, hub, settings, clock)
            with tempfile.TemporaryDirectory(prefix="cognito-fleet-plan-") as scratch:
                checkpoint = Checkpoint(Path(scratch) / "plan.sqlite")
                try:
                    for hold in holds.values():  # the run's holds, so the plan leaves those domains as it would
                        checkpoint.hold_domains([(hold.domain, hold.certificate_arn)], hold.rollback_id, hold.who)
                    checkpoint.begin(run_id, manifest.path, len(manifest.rows))
                    info = run_info("plan", run_id, hub, manifest, settings, report=str(report_path))
                    if observer is not None:
                        observer.started(info)
                    await supervise(manifest.rows, checkpoint, settings, hub, observer, StopPolicy(), stop, clock)
                    counts = write_report(manifest.rows, checkpoint, report_path, edges=edges)
                    if out is not None and not counts[str(Status.SKIPPED)]:
                        options = info["options"]
                        assert isinstance(options, dict)
                        domains = planned_domains(manifest.rows, checkpoint)
                        write_plan(
                            out,
                            run_id,
                            made_at,
                            hub.arn or "unknown",
                            manifest.path,
                            domains,
                            options,
                            change_ref=settings.change_ref,
                        )
                    return counts
                finally:
                    checkpoint.close()

    counts = anyio.run(job)
    written = out if out is not None and not counts[str(Status.SKIPPED)] else None
    return RunResult(
        counts,
        report_path,
        jsonl_path(report_path),
        Path(),
        stop.reason,
        run_id=run_id,
        edges=edges,
        plan_out=written,
        manifest=manifest.path,
        fleet_held=held,
    )


def planned_domains(rows: Sequence[Row], checkpoint: Checkpoint) -> list[PlannedDomain]:
    """The plan's lines, from the plan's report lines: a plan's previous certificate is the one Describe showed."""
    out = []
    for row in rows:
        line = record(row, checkpoint.stored(row.domain), checkpoint.pass_, None)
        text = {k: None if v is None else str(v) for k, v in line.items()}
        out.append(
            PlannedDomain(
                account_id=row.account_id,
                region=row.region,
                user_pool_id=row.user_pool_id,
                domain=row.domain,
                current_certificate_arn=text["previous_certificate_arn"],
                certificate_arn=row.certificate_arn,
                action=str(line["status"]),
                error_code=text["error_code"],
                error_message=text["error_message"],
                edge=text["edge"],
                edge_not_after=text["edge_not_after"],
            )
        )
    return out
