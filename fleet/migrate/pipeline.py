"""manifest -> hub check -> lock -> checkpoint -> engine (supervised) -> report: the whole job, as `run` does it."""

from __future__ import annotations

import collections
import dataclasses
import getpass
import hashlib
import importlib.metadata
import json
import os
import secrets
import signal
import socket
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio

from fleet.aws.credentials import Hub
from fleet.aws.endpoints import summary
from fleet.aws.hub_check import checked_hub
from fleet.aws.stop import Stop
from fleet.clock import Clock, SystemClock
from fleet.errors import EXIT_FAILED_ROWS, EXIT_OK, EXIT_RESUMABLE, FleetError, reduce_group
from fleet.files import atomic_writer
from fleet.manifest import Manifest, Row, RowFilter, parse
from fleet.migrate import allow_list
from fleet.migrate.engine import EngineSettings, Observer, Tally, run_rows
from fleet.migrate.row import Mode
from fleet.migrate.stuck import age, human
from fleet.outcome import SUCCESS, Status, stamp
from fleet.records.plan_file import PlannedDomain, write_plan
from fleet.records.report import EdgeTally, jsonl_path, record, run_record_path, summary_line, write_report
from fleet.shard import Shard
from fleet.state.checkpoint import Checkpoint
from fleet.state.holds import Hold
from fleet.state.lock import CheckpointLock


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
    digest = hashlib.sha256(f"{manifest.fingerprint}/{shard.suffix if shard else ''}/{only}".encode()).hexdigest()
    return Manifest(manifest.path, tuple(rows), digest)


def new_run_id() -> str:
    """When and where the run started, and a random part: unique in the state's history even for two runs of
    one process in the same second."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class RunResult:
    counts: collections.Counter[str]
    report: Path
    report_jsonl: Path
    checkpoint: Path
    stopped: str | None = None  # why the run stopped early, if it did
    aborted: bool = False  # stopped because of failures (budget, canary), not time
    drift: int = 0  # domains found moved off their target by someone else, and written again
    run_id: str = ""
    edges: EdgeTally | None = None  # the report's edge column; None: --no-edge-check
    tally: Tally = dataclasses.field(default_factory=Tally)
    fleet_held: str | None = None  # the state's fleet hold: nothing was called (the one line to print)
    pending: tuple[tuple[str, float], ...] = ()  # pending rows' (domain, seconds since the write), oldest first
    stuck_after: float | None = None
    plan_out: Path | None = None  # plan --out: the plan file written (None: not asked for, or the plan stopped early)

    def lines(self, read_only: bool = False) -> list[str]:
        """What `run` and `plan` print at the end: why it stopped early, the counts, where the files are."""
        if self.fleet_held:
            return [self.fleet_held]
        out = []
        if self.stopped:
            hint = "" if self.aborted else "; rerun the same command to resume"
            out.append(f"stopped early ({self.stopped}){hint}")
        out.append(summary_line(self.counts))
        out.extend(self.tally.notes)
        before, after = self.tally.before_write, self.tally.after_write
        if before:
            out.append(
                f"failed before any write (pre-flight, access; not counted against the failure budget): "
                f"{sum(before.values())} ({_codes(before)})"
            )
        if after:
            out.append(
                f"failed after a write (the failure budget counts these): {sum(after.values())} ({_codes(after)})"
            )
        if self.counts[str(Status.HELD)]:
            out.append(
                f"held: {self.counts[str(Status.HELD)]} domains stay on their previous certificate by a rollback "
                f"(see the report; to move them forward: cognito-fleet release {self.checkpoint} --domain D | --all)"
            )
        if self.pending:
            domain, seconds = self.pending[0]
            limit = (
                f"; still UPDATING after {_span(self.stuck_after)} they fail StuckUpdating" if self.stuck_after else ""
            )
            out.append(
                f"pending: {len(self.pending)} domains still distributing; oldest written {_span(seconds)} ago "
                f"({domain}){limit}"
            )
        if self.drift:
            out.append(f"drift: {self.drift} domains had been moved off their target by someone else: written again")
        if self.counts[str(Status.DRIFTED_SINCE_PLAN)]:
            out.append(
                f"drifted since the plan: {self.counts[str(Status.DRIFTED_SINCE_PLAN)]} domains not written (on "
                "another certificate than the plan saw, or not planned to be written; see the report): make a new plan"
            )
        out += self.edge_lines(read_only)
        out.append(f"report: {self.report} (and {self.report_jsonl})")
        if self.plan_out is not None:
            out.append(f"plan: {self.plan_out} (to approve; then: cognito-fleet run MANIFEST --plan {self.plan_out})")
        if not read_only:
            out.append(f"checkpoint: {self.checkpoint}")
        return out

    def edge_lines(self, read_only: bool = False) -> list[str]:
        """What the edge served, and a warning when it was not checked or could not be reached."""
        if self.edges is None:
            if read_only:
                return []
            return [
                "warning: edge not checked (--no-edge-check): verified means Cognito says ACTIVE; clients may still "
                "be served the previous certificate for up to an hour"
            ]
        out = []
        if self.edges.counts:
            out.append("edge: " + ", ".join(f"{k}={v}" for k, v in sorted(self.edges.counts.items())))
        if self.edges.unreachable:
            why = "; ".join(f"{n}: {kind}" for kind, n in self.edges.unreachable.most_common())
            out.append(
                f"warning: {sum(self.edges.unreachable.values())} edges could not be reached ({why}); those domains "
                "stay pending and the next run looks again; a runner without egress: --no-edge-check"
            )
        return out

    @property
    def exit_code(self) -> int:
        if self.fleet_held:
            return EXIT_OK
        if self.stopped and not self.aborted and self.counts[str(Status.SKIPPED)]:
            return EXIT_RESUMABLE
        ok = sum(self.counts[str(s)] for s in SUCCESS)
        return EXIT_OK if ok == sum(self.counts.values()) else EXIT_FAILED_ROWS


def _codes(counts: collections.Counter[str]) -> str:
    return ", ".join(f"{code}={n}" for code, n in counts.most_common())


def _span(seconds: float | None) -> str:
    return human(timedelta(seconds=seconds or 0))


def pending_ages(rows: Sequence[Row], checkpoint: Checkpoint, now: datetime) -> tuple[tuple[str, float], ...]:
    """Rows that ended ``pending`` in this pass, with the time since the tool's write, oldest first."""
    ages = []
    for row in rows:
        stored = checkpoint.stored(row.domain)
        if stored is None or stored.pass_ != checkpoint.pass_ or stored.outcome.status is not Status.PENDING:
            continue
        if stored.outcome.certificate_arn != row.certificate_arn:
            continue
        waited = age(checkpoint.written_at(row.domain, row.certificate_arn), now)
        ages.append((row.domain, waited.total_seconds() if waited else 0.0))
    return tuple(sorted(ages, key=lambda a: -a[1]))


def run_info(
    command: str, run_id: str, hub: Hub, manifest: Manifest, settings: EngineSettings, **more: object
) -> dict[str, object]:
    """What ``run_started`` says: who runs what on which fleet, where the calls go (each service's endpoint and
    the setting it came from), and the options that matter (no secret)."""
    aws = settings.aws
    return {
        "run_id": run_id,
        "command": command,
        "hub": hub.arn,
        "endpoints": summary(hub.endpoints),
        **where_and_who(),
        "manifest": manifest.path,
        "manifest_sha256": manifest_sha256(manifest.path),
        "rows": len(manifest.rows),
        "accounts": len(manifest.accounts),
        "regions": sorted(manifest.regions),
        "options": {
            "endpoint_url": aws.endpoint_url,
            "insecure_endpoint": aws.insecure_endpoint,
            "profile": aws.profile,
            "role_name": aws.role_name,
            "external_id": "set" if aws.external_id else None,
            "rate_per_account": settings.rate_per_account,
            "concurrency": settings.concurrency,
            "account_concurrency": settings.account_concurrency,
            "max_attempts": settings.policy.max_attempts,
            "min_validity_days": settings.min_validity_days,
            "wait": settings.mode.wait,
            "wait_timeout": settings.mode.wait_timeout if settings.mode.wait else None,
            "canary": settings.canary,
            "max_failures": settings.max_failures,
            "edge_check": settings.edge.check,
            "edge_address": settings.edge.address if settings.edge.check else None,
        },
        **more,
    }


def where_and_who() -> dict[str, str]:
    """The host, the OS user and the tool's version: with the hub ARN, who ran a run, where, with what."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        user = f"uid {os.getuid()}"
    try:
        version = importlib.metadata.version("cognito-fleet")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return {"host": socket.gethostname(), "user": user, "version": version}


def manifest_sha256(path: str | Path) -> str | None:
    """The manifest file's SHA-256, as run (None if it cannot be read again)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def write_run_record(report_path: Path, info: dict[str, object]) -> None:
    """Beside the report, written whole (0600) like it: what the change record names as the run."""
    with atomic_writer(run_record_path(report_path)) as fh:
        json.dump(info, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")


def _recorded(info: dict[str, object]) -> dict[str, object]:
    """What the state's runs table keeps of ``run_started``: who, where, with what (no secret: the options
    already say only whether an external id was set)."""
    keep = ("command", "hub", "host", "user", "version", "manifest_sha256", "endpoints", "options", "report")
    return {k: info[k] for k in keep if k in info}


Approve = Callable[[dict[str, object]], bool]


class NotApproved(FleetError):
    """The operator answered no at the prompt: nothing was written."""

    exit_code = EXIT_FAILED_ROWS


@dataclass(frozen=True, slots=True)
class StopPolicy:
    drain_seconds: float = 20.0  # after a stop request, in-flight calls get this long to finish
    max_runtime: float | None = None  # stop requested at this many seconds
    handle_signals: bool = True


async def supervise(
    rows: Sequence[Row],
    checkpoint: Checkpoint,
    settings: EngineSettings,
    hub: Hub,
    observer: Observer | None,
    policy: StopPolicy,
    stop: Stop,
    clock: Clock,
) -> Tally:
    """Run the engine; on SIGTERM/SIGINT or the deadline stop starting rows, drain, then cancel.

    A second signal cancels at once. Cancelling never corrupts the checkpoint: each record is one SQLite
    transaction that its worker thread finishes even when the awaiting task is cancelled.
    """
    try:
        work = anyio.CancelScope()
        async with anyio.create_task_group() as tg:

            async def drain_then_cancel() -> None:
                await clock.sleep(policy.drain_seconds)
                work.cancel()

            def begin_stop(reason: str) -> str:
                if stop.requested:
                    work.cancel()  # second request: stop now
                    return (
                        "cancel now: calls in flight are cut (a cut write stays in flight: described first next time)"
                    )
                stop.request(reason)
                tg.start_soon(drain_then_cancel)
                return f"stop starting rows; calls in flight get {policy.drain_seconds:g}s to finish; then exit 75"

            async def signals() -> None:
                with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
                    async for signum in received:
                        name = signal.Signals(signum).name
                        action = begin_stop(name)
                        if observer is not None:
                            observer.note("signal", "warning", {"signal": name, "action": action})

            async def deadline(seconds: float) -> None:
                await clock.sleep(seconds)
                begin_stop(f"max-runtime {seconds:g}s")

            if policy.handle_signals:
                tg.start_soon(signals)
            if policy.max_runtime is not None:
                tg.start_soon(deadline, policy.max_runtime)
            tally = Tally()  # what the engine tallied; empty if the drain cut it short
            with work:
                tally = await run_rows(rows, checkpoint, settings, hub, observer, clock, stop)
            tg.cancel_scope.cancel()
        return tally
    except BaseExceptionGroup as group:  # the tool's own error (a full disk), not a group of its echoes
        raise reduce_group(group) from None


def migrate(
    source: Manifest | str | Path,
    checkpoint_path: Path,
    report_path: Path,
    settings: EngineSettings,
    observer: Observer | None = None,
    policy: StopPolicy | None = None,
    shard: Shard | None = None,
    clock: Clock | None = None,
    run_id: str | None = None,
    approve: Approve | None = None,
) -> RunResult:
    """Check the hub (HubUnavailable), lock (LockHeld), open the checkpoint (CheckpointMismatch), run, report.

    ``source`` is the parsed manifest, or its path (parsed here: ManifestError). Nothing is locked or written
    before the hub is confirmed; ``approve`` (the terminal's y/N) sees the hub, the fleet and the writes a read-only
    plan found (how many, in how many accounts) before anything is written, and asks only when there are some; a no
    raises NotApproved.
    """
    manifest = source if isinstance(source, Manifest) else load(source, shard)
    stop, clock, run_id = Stop(), clock or SystemClock(), run_id or new_run_id()
    held = _fleet_hold(checkpoint_path)
    if held is not None:  # an operator held the fleet: no call at all, not even the hub's
        return RunResult(
            collections.Counter(), report_path, jsonl_path(report_path), checkpoint_path, run_id=run_id, fleet_held=held
        )

    edges = EdgeTally() if settings.edge.check else None

    async def job() -> tuple[collections.Counter[str], int, Tally, tuple[tuple[str, float], ...]]:
        async with checked_hub(settings.aws, settings.policy, clock.sleep, manifest.regions) as hub:
            with CheckpointLock(checkpoint_path):
                more = {"plan": plan_facts(settings)} if settings.approved else {}
                info = run_info("run", run_id, hub, manifest, settings, report=str(report_path), **more)
                if approve is not None:
                    writes = await writes_ahead(manifest, checkpoint_path, settings, hub, clock)
                    if not approve({**info, "writes": len(writes), "write_accounts": len(set(writes))}):
                        raise NotApproved("not confirmed at the prompt: nothing was written")
                checkpoint = Checkpoint(checkpoint_path)
                try:
                    mode = checkpoint.begin(run_id, manifest.path, len(manifest.rows), _recorded(info))
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

    counts, drift, tally, ages = anyio.run(job)
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


def plan_facts(settings: EngineSettings) -> dict[str, str]:
    """What run_started says of the plan a run applies: which file (its SHA-256, to match the approved one)."""
    assert settings.approved is not None
    plan = settings.approved.plan
    return {"path": str(plan.path), "sha256": plan.sha256, "plan_id": plan.plan_id, "made_at": stamp(plan.made_at)}


def _fleet_hold(checkpoint_path: Path) -> str | None:
    """The state's fleet hold, as the one line a held run prints; None when not held (or no state yet)."""
    if not checkpoint_path.exists():
        return None
    state = Checkpoint(checkpoint_path, create=False)
    try:
        hold = state.fleet_hold()
        return None if hold is None else hold.message(str(checkpoint_path))
    finally:
        state.close()


def _holds(checkpoint_path: Path) -> dict[str, Hold]:
    if not checkpoint_path.exists():
        return {}
    state = Checkpoint(checkpoint_path, create=False)
    try:
        return state.holds()
    finally:
        state.close()


async def writes_ahead(
    manifest: Manifest, checkpoint_path: Path, settings: EngineSettings, hub: Hub, clock: Clock
) -> list[str]:
    """What the run would write now (for the terminal's question): the accounts of the rows a plan finds to write,
    one per write, leaving out rows a rollback holds. Read-only: the plan records into a throw-away state."""
    holds = _holds(checkpoint_path)
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
) -> RunResult:
    """Read-only: describe and check every row, write nothing; rows end planned / unchanged / failed.

    The run's checkpoint is neither read nor written: plan records into a throw-away one. ``out``: also write the
    plan file (fleet.plan_file) that `run --plan` applies, unless the plan stopped early (rows not looked at).
    """
    manifest = source if isinstance(source, Manifest) else load(source, shard)
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
                        write_plan(out, run_id, made_at, hub.arn or "unknown", manifest.path, domains, options)
                    return counts
                finally:
                    checkpoint.close()

    counts = anyio.run(job)
    written = out if out is not None and not counts[str(Status.SKIPPED)] else None
    return RunResult(
        counts, report_path, jsonl_path(report_path), Path(), stop.reason, run_id=run_id, edges=edges, plan_out=written
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
