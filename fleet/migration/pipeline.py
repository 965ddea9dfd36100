"""The one job: `run` and `plan` (and the prompt's pre-check, a plan pass inside a run) are one async body with a
kind, ``run_job``:

    the state's holds (a held fleet: nothing at all) -> the AWS runtime (hub check) ->
    run:  lock -> [pre-check: a plan pass; the prompt] -> the state -> engine (supervised) -> report, run record
    plan: [allow-list] -> a throw-away state with the run's holds -> engine (supervised) -> report, [plan file]

``migrate`` / ``plan`` (and their awaitable ``migrate_async`` / ``plan_async``) are the Python entry points with
their long-standing signatures; the CLI builds a ``Job`` and calls ``execute_job``.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import os
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, ParamSpec

import anyio

from fleet.aws.runtime import Runtime
from fleet.clock import Clock, SystemClock
from fleet.errors import EXIT_FAILED_ROWS, FleetError
from fleet.manifest import Manifest, Row, parse
from fleet.migration.engine import EngineSettings, Observer, Tally, open_runtime
from fleet.migration.plan_certificates import CertificatesSeen, with_certificates
from fleet.migration.planning import Allowed as Allowed
from fleet.migration.planning import plan_facts, planned_domains, planning, warn_outside
from fleet.migration.result import RunResult as RunResult
from fleet.migration.result import pending_ages
from fleet.migration.run_record import for_state, run_info, write_run_record
from fleet.migration.state_store import StatePath, scratch, state_at
from fleet.migration.supervise import StopPolicy as StopPolicy
from fleet.migration.supervise import supervise
from fleet.outcome import Status
from fleet.records.plan_file import write_plan
from fleet.records.report import EdgeTally, jsonl_path, write_report
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


class Kind(StrEnum):
    RUN = "run"  # write: the state is the run's own, locked
    PLAN = "plan"  # read-only: rows end planned / unchanged / held / failed in a throw-away state


@dataclass(frozen=True, slots=True)
class Job:
    """Everything ``run_job`` needs: what to do (``kind``), on which fleet, where its files go, and how."""

    kind: Kind
    manifest: Manifest
    report: Path
    settings: EngineSettings
    state: StatePath | None = None  # run: the state it extends; plan: the one whose holds it respects (None: none)
    observer: Observer | None = None
    policy: StopPolicy = field(default_factory=StopPolicy)  # plan: signals only
    clock: Clock = field(default_factory=SystemClock)
    run_id: str = field(default_factory=new_run_id)
    approve: Approve | None = None  # run: the terminal's y/N, asked after a plan pass counted the writes
    allowed: Allowed | None = None  # plan: warn about manifest accounts outside these
    out: Path | None = None  # plan: also write the plan file that `run --plan` applies
    watch: bool = False  # plan: the watcher (`plan --check`): a held fleet is still looked at (the result says held)


async def run_job(job: Job) -> RunResult:
    """The job's one body. Nothing is called when the state holds the fleet; nothing is locked or written before
    the hub is confirmed (HubUnavailable); a run takes the state's lock (LockHeld) and opens it
    (CheckpointMismatch); ``approve`` sees the hub, the fleet and the writes a plan pass found before anything is
    written, and a no raises NotApproved."""
    held, holds = state_at(job.state, job.settings.aws).holds() if job.state is not None else (None, {})
    where = job.state if job.kind is Kind.RUN and job.state is not None else Path()
    watching = job.kind is Kind.PLAN and job.watch  # a hold stops writes, never the watcher
    if held is not None and not watching:  # an operator held the fleet: no call at all, not even the hub's
        empty: Counts = collections.Counter()
        return RunResult(empty, job.report, jsonl_path(job.report), where, run_id=job.run_id, fleet_held=held)
    edges = EdgeTally() if job.settings.edge.check else None
    made_at = job.clock.now()  # a plan's age counts from before its first look at the fleet
    observer = job.observer or Observer()
    settings = job.settings if job.kind is Kind.RUN else planning(job.settings)
    async with open_runtime(settings, job.manifest.regions, job.clock, observer.outage) as aws:
        if job.kind is Kind.RUN:
            ran = await _run(job, aws, holds, edges)
        else:
            ran = _Ran(await _plan(job, aws, holds, edges, made_at))
    plan_out = job.out if job.kind is Kind.PLAN and job.out is not None and not ran.counts[SKIPPED] else None
    return RunResult(
        ran.counts,
        job.report,
        jsonl_path(job.report),
        where,
        aws.stop.reason,
        aws.stop.aborted,
        ran.drift,
        job.run_id,
        edges,
        tally=ran.tally,
        pending=ran.pending,
        stuck_after=settings.mode.stuck_after if job.kind is Kind.RUN else None,
        plan_out=plan_out,
        manifest=job.manifest.path if job.kind is Kind.PLAN else "MANIFEST",
        fleet_held=held or ran.held,
    )


Counts = collections.Counter[str]
SKIPPED = str(Status.SKIPPED)


@dataclass(frozen=True, slots=True)
class _Ran:
    """What a pass ends with, beyond the report."""

    counts: Counts
    tally: Tally = field(default_factory=Tally)
    drift: int = 0
    pending: tuple[tuple[str, float], ...] = ()
    held: str | None = None  # the fleet was held while the run waited for its lock or its prompt: nothing written


async def _run(job: Job, aws: Runtime, holds: Mapping[str, Hold], edges: EdgeTally | None) -> _Ran:
    """Lock, [ask], open the state, run the rows, report: the run's pass."""
    assert job.state is not None
    store, settings, rows = state_at(job.state, job.settings.aws, job.run_id), job.settings, job.manifest.rows
    with store.lock(aws.stop):
        more = {"plan": plan_facts(settings)} if settings.approved else {}
        report = str(job.report)
        info = run_info("run", job.run_id, aws.hub, job.manifest, settings, state=job.state, report=report, **more)
        if job.approve is not None:
            # Held since the job read the state (before the hub check)? Then no prompt at all (`hold` says "every
            # run exits at once").
            held, holds = store.holds()
            if held is not None:
                return _Ran(collections.Counter(), held=held)
            writes = await _writes_ahead(job, aws, holds)
            # A pre-check stopped (an outage past --outage-patience) writes nothing: the run stops, resumable.
            if not aws.stop.requested and not job.approve(
                {**info, "writes": len(writes), "write_accounts": len(set(writes))}
            ):
                raise NotApproved("not confirmed at the prompt: nothing was written")
        with store.open() as state:
            # Read again under the lock: a `hold` run while this job checked the hub or waited at the prompt stops
            # it here, before any write (the rows' own holds are read again by the engine).
            fleet = state.fleet_hold()
            if fleet is not None:
                return _Ran(collections.Counter(), held=fleet.message(str(store)))
            mode = state.begin(job.run_id, job.manifest.path, len(rows), for_state(info))
            if job.observer is not None:
                job.observer.started({**info, "mode": mode, "checkpoint": str(store)})
            tally = await supervise(rows, state, settings, aws, job.observer, job.policy)
            reason = aws.stop.reason if aws.stop.aborted else None
            counts = write_report(rows, state, job.report, reason, edges)
            # Every row ended (failed ones too): the next run starts a new pass and converges.
            state.finish(dict(counts), complete=not counts[SKIPPED])
            tally.writes = state.writes()
            write_run_record(job.report, {**(state.run_info(job.run_id) or {}), "writes": tally.writes})
            ages = pending_ages(rows, state, aws.clock.now()) if counts[str(Status.PENDING)] else ()
            return _Ran(counts, tally, state.drifted(), ages)


@contextlib.asynccontextmanager
async def _plan_pass(
    job: Job, aws: Runtime, holds: Mapping[str, Hold], run_id: str, observer: Observer | None, policy: StopPolicy
) -> AsyncIterator[Checkpoint]:
    """Every row described and checked, nothing written, into a throw-away state that carries the run's holds (so
    held domains end ``held``, as the run would leave them); the state is readable until the block ends."""
    with scratch(holds) as state:
        state.begin(run_id, job.manifest.path, len(job.manifest.rows))
        await supervise(job.manifest.rows, state, planning(job.settings), aws, observer, policy)
        yield state


async def _plan(
    job: Job, aws: Runtime, holds: Mapping[str, Hold], edges: EdgeTally | None, made_at: datetime
) -> Counts:
    """`plan`: [the allow-list], a plan pass, its report, [the plan file, unless it stopped early]."""
    if job.allowed is not None:
        await warn_outside(job.manifest, job.allowed, aws)
    info = run_info("plan", job.run_id, aws.hub, job.manifest, planning(job.settings), report=str(job.report))
    if job.observer is not None:
        job.observer.started(info)
    seen = CertificatesSeen(job.observer)  # the plan file's certificate facts, kept as the rows end
    if job.out is not None:  # a plan file shows each domain's certificates: its rows describe them (each once)
        job = dataclasses.replace(job, settings=dataclasses.replace(job.settings, expiry=True))
    async with _plan_pass(job, aws, holds, job.run_id, seen, StopPolicy()) as state:
        counts = write_report(job.manifest.rows, state, job.report, edges=edges)
        if job.out is not None and not counts[SKIPPED]:
            options = info["options"]
            assert isinstance(options, dict)
            domains = with_certificates(planned_domains(job.manifest.rows, state), seen.facts)
            hub, change_ref = aws.hub.arn or "unknown", job.settings.change_ref
            write_plan(job.out, job.run_id, made_at, hub, job.manifest.path, domains, options, change_ref=change_ref)
        return counts


async def _writes_ahead(job: Job, aws: Runtime, holds: Mapping[str, Hold]) -> list[str]:
    """The prompt's pre-check, a plan pass: the account of each row it finds to write (held rows are not)."""
    quiet = StopPolicy(handle_signals=False)  # Ctrl-C at this point ends the process: nothing is written yet
    async with _plan_pass(job, aws, holds, "ask", None, quiet) as state:
        return [r.account_id for r in job.manifest.rows if (o := state.get(r.domain)) and o.status is Status.PLANNED]


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
    """`run` (``source``: the parsed manifest, or its path, parsed here: ManifestError): ``run_job`` of kind run."""
    manifest = source if isinstance(source, Manifest) else load(source, shard)
    clock, run_id = clock or SystemClock(), run_id or new_run_id()
    policy = policy or StopPolicy()
    return await run_job(
        Job(Kind.RUN, manifest, report_path, settings, checkpoint_path, observer, policy, clock, run_id, approve)
    )


async def plan_async(
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
    """`plan`, read-only: ``run_job`` of kind plan. ``state``: the run's state, read for its holds (a domain a
    rollback holds is planned ``held``, a held fleet plans nothing, unless ``watch``: the watcher, `plan --check`,
    looks all the same and the result says held); ``out``: also write the plan file (fleet.records.plan_file) that
    `run --plan` applies, unless the plan stopped early (rows not looked at)."""
    manifest = source if isinstance(source, Manifest) else load(source, shard)
    clock, run_id = clock or SystemClock(), run_id or new_run_id()
    job = Job(Kind.PLAN, manifest, report_path, settings, state, observer, StopPolicy(), clock, run_id)
    return await run_job(dataclasses.replace(job, allowed=allowed, out=out, watch=watch))


P = ParamSpec("P")


def _in_own_loop(job: Callable[P, Coroutine[Any, Any, RunResult]]) -> Callable[P, RunResult]:
    """``job`` run in an event loop of its own (what scripts call); tests await ``job`` itself."""

    @functools.wraps(job)
    def run(*args: P.args, **kwargs: P.kwargs) -> RunResult:
        return anyio.run(functools.partial(job, *args, **kwargs))

    return run


migrate = _in_own_loop(migrate_async)  # what `cognito-fleet run` does
plan = _in_own_loop(plan_async)  # what `cognito-fleet plan` does


def execute_job(job: Job) -> RunResult:
    """The CLI's one call: the job in an event loop of its own."""
    return anyio.run(run_job, job)
