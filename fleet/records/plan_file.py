"""A saved plan (`plan --out PLAN.json`) and its rule at run time (`run --plan PLAN.json`).

The plan is what a change board approves: every domain with the certificate it is on (the fleet's fingerprint at
plan time), its target and what a run would do; when it was made, by which hub identity, from which manifest (path
and SHA-256). Under ``run --plan`` a domain is written only when the plan planned that very write and Describe still
shows the certificate the plan saw; anything else ends ``drifted-since-plan``, unwritten.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fleet.errors import FleetError
from fleet.files import atomic_writer
from fleet.manifest import Row
from fleet.outcome import Status, stamp

FORMAT, VERSION = "cognito-fleet-plan", 1
DEFAULT_MAX_AGE = 7 * 86400.0  # a week: long enough for a change board, short enough that the fleet is still it
FUTURE_SKEW = timedelta(minutes=5)  # a plan made "later" than now by more than this: another machine's bad clock
# held: a rollback holds the domain (the plan read the run's state): approved as left alone.
ACTIONS = frozenset({str(Status.PLANNED), str(Status.UNCHANGED), str(Status.FAILED), str(Status.HELD)})


class PlanError(FleetError):
    """The plan cannot be used (malformed, too old, another manifest): exit 2, nothing called."""


@dataclass(frozen=True, slots=True)
class PlannedDomain:
    """One domain as the plan saw it, and what a run would do: planned (write), unchanged, or failed."""

    account_id: str
    region: str
    user_pool_id: str
    domain: str
    current_certificate_arn: str | None  # None: the plan could not read it (the row failed before that)
    certificate_arn: str  # the target
    action: str
    error_code: str | None = None
    error_message: str | None = None
    edge: str | None = None  # what its edge served at plan time
    edge_not_after: str | None = None

    def key(self) -> tuple[str, str, str, str, str]:
        return (self.account_id, self.region, self.user_pool_id, self.domain, self.certificate_arn)


def row_key(row: Row) -> tuple[str, str, str, str, str]:
    return (row.account_id, row.region, row.user_pool_id, row.domain, row.certificate_arn)


def fingerprint(domains: Iterable[PlannedDomain]) -> str:
    """SHA-256 of every domain's current certificate (sorted by domain): one value a change board can quote."""
    pairs = sorted((d.domain, d.current_certificate_arn or "") for d in domains)
    return hashlib.sha256(json.dumps(pairs, separators=(",", ":")).encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True, slots=True)
class Plan:
    path: Path
    sha256: str  # of the plan file as read: what run_started names, so an auditor can match the approved file
    plan_id: str
    made_at: datetime
    hub: str
    manifest_path: str
    manifest_sha256: str
    domains: tuple[PlannedDomain, ...]
    options: Mapping[str, object]

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.domains)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.domains:
            out[d.action] = out.get(d.action, 0) + 1
        return out


def write_plan(
    path: Path,
    plan_id: str,
    made_at: datetime,
    hub: str,
    manifest_path: str,
    domains: Sequence[PlannedDomain],
    options: Mapping[str, object],
) -> None:
    """The plan as JSON, whole or not at all, mode 0600 (files.atomic_writer)."""
    counts: dict[str, int] = {}
    for d in domains:
        counts[d.action] = counts.get(d.action, 0) + 1
    document = {
        "format": FORMAT,
        "version": VERSION,
        "plan_id": plan_id,
        "made_at": stamp(made_at),
        "hub": hub,
        "manifest": {"path": manifest_path, "sha256": file_sha256(manifest_path)},
        "fingerprint": fingerprint(domains),
        "counts": counts,
        "options": dict(options),
        "domains": [asdict(d) for d in domains],
    }
    with atomic_writer(path) as fh:
        json.dump(document, fh, indent=1)
        fh.write("\n")


def read_plan(path: Path) -> Plan:
    """A plan file, checked whole: PlanError (one line naming the file and what is wrong) otherwise."""

    def bad(why: str) -> PlanError:
        return PlanError(f"{path}: not a usable cognito-fleet plan ({why}); make a new one: cognito-fleet plan --out")

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PlanError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise bad("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise PlanError(f"{path}:{exc.lineno}:{exc.colno}: not a cognito-fleet plan: bad JSON ({exc.msg})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise bad(f'no "format": "{FORMAT}"')
    if doc.get("version") != VERSION:
        raise bad(f"version {doc.get('version')!r}; this tool reads version {VERSION}")
    made_at = _time(_field(doc, "made_at", str, bad), bad)
    manifest = _field(doc, "manifest", dict, bad)
    raw = _field(doc, "domains", list, bad)
    domains = tuple(_domain(entry, i, bad) for i, entry in enumerate(raw))
    if len({d.domain for d in domains}) != len(domains):
        raise bad("a domain is listed twice")
    plan = Plan(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        plan_id=_field(doc, "plan_id", str, bad),
        made_at=made_at,
        hub=_field(doc, "hub", str, bad),
        manifest_path=_field(manifest, "path", str, bad, "manifest.path"),
        manifest_sha256=_field(manifest, "sha256", str, bad, "manifest.sha256"),
        domains=domains,
        options=_field(doc, "options", dict, bad),
    )
    if _field(doc, "fingerprint", str, bad) != plan.fingerprint:
        raise bad("its fingerprint does not match its domains' current certificates: the file was edited")
    return plan


def _field(doc: Mapping[str, Any], name: str, kind: type, bad: Any, label: str | None = None) -> Any:
    value = doc.get(name)
    if not isinstance(value, kind):
        raise bad(f"{label or name}: expected a {kind.__name__}, found {type(value).__name__}")
    return value


def _time(value: str, bad: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise bad(f"made_at {value!r} is not an ISO 8601 time") from None
    return moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)


def _domain(entry: object, index: int, bad: Any) -> PlannedDomain:
    where = f"domains[{index}]"
    if not isinstance(entry, dict):
        raise bad(f"{where}: expected an object")
    required = ("account_id", "region", "user_pool_id", "domain", "certificate_arn", "action")
    optional = ("current_certificate_arn", "error_code", "error_message", "edge", "edge_not_after")
    values = {k: _field(entry, k, str, bad, f"{where}.{k}") for k in required}
    for k in optional:
        if entry.get(k) is not None and not isinstance(entry.get(k), str):
            raise bad(f"{where}.{k}: expected a str or null")
        values[k] = entry.get(k)
    if values["action"] not in ACTIONS:
        raise bad(f"{where}.action: {values['action']!r} is not one of {', '.join(sorted(ACTIONS))}")
    return PlannedDomain(**values)


def span(delta: timedelta) -> str:
    """7d, 8d2h, 1h30m, 45s: a plan's age in the units people approve in (the two largest)."""
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{n}{unit}" for n, unit in [p for p in parts if p[0]][:2]) or "0s"


# --- run --plan: the checks before anything is called --------------------------------------------------------


def check_usable(plan: Plan, manifest: Path, now: datetime, max_age: float) -> None:
    """Refuse (PlanError, exit 2) a plan older than ``max_age`` seconds, made in the future, or of another manifest
    (its SHA-256 is the rule: the file the board approved, byte for byte)."""
    age = now - plan.made_at
    if age > timedelta(seconds=max_age):
        raise PlanError(
            f"{plan.path}: made {stamp(plan.made_at)}, {span(age)} ago: older than --plan-max-age "
            f"{span(timedelta(seconds=max_age))}; make a new plan and have it approved"
        )
    if age < -FUTURE_SKEW:
        raise PlanError(f"{plan.path}: made {stamp(plan.made_at)}, in the future: check the clocks, make a new plan")
    try:
        digest = file_sha256(manifest)
    except OSError as exc:
        raise PlanError(f"{manifest}: cannot read: {exc.strerror or exc}") from None
    if digest != plan.manifest_sha256:
        raise PlanError(
            f"{manifest}: SHA-256 {digest[:12]}… is not the plan's manifest ({plan.path} was made from "
            f"{plan.manifest_path}, SHA-256 {plan.manifest_sha256[:12]}…); run the manifest the plan was made from, "
            "or make a new plan"
        )


# --- run --plan: the rule per domain (fleet/migration/row.py calls it) ------------------------------------------------


class DriftedSincePlan(Exception):
    """The row may not be written under the plan: it ends ``drifted-since-plan`` with ``code`` and ``message``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class Approved:
    """The plan a run applies: what may be written, and on which certificate each domain must still be."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._by_key = {d.key(): d for d in plan.domains}

    def entry(self, row: Row) -> PlannedDomain:
        """The plan's line for this row (same account, region, pool, domain and target), or DriftedSincePlan."""
        found = self._by_key.get(row_key(row))
        if found is None:
            raise DriftedSincePlan("NotInPlan", f"{row.domain!r} with this target is not in the plan {self.plan.path}")
        return found

    def check_current(self, row: Row, current: str, original: str | None) -> None:
        """Describe shows ``current``: it must be the certificate the plan saw, or the target this tool moved the
        domain to from there (``original``: this plan's own write, seen again by a resumed or converging run)."""
        seen = self.entry(row).current_certificate_arn
        if current == seen or (current == row.certificate_arn and original is not None and original == seen):
            return
        raise DriftedSincePlan(
            "CertificateChangedSincePlan",
            f"on {current}, the plan ({stamp(self.plan.made_at)}) saw {seen or 'no certificate'}: not written; "
            "make a new plan",
        )

    def check_write(self, row: Row) -> None:
        """The plan must have planned this write (a row it saw failing or unchanged may not be written now)."""
        entry = self.entry(row)
        if entry.action != Status.PLANNED:
            what = f"{entry.action} {entry.error_code or ''}".strip()
            raise DriftedSincePlan(
                "NotPlannedToWrite", f"the plan did not plan this write (it said: {what}): not written; make a new plan"
            )
