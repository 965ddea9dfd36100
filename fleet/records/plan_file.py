"""A saved plan (`plan --out PLAN.json`) and its rule at run time (`run --plan PLAN.json`).

The plan is what a change board approves: every domain with the certificate it is on, its target and what a run
would do; when it was made, by which hub identity, from which manifest (path and SHA-256), for which change ticket.
The board approves the file by its SHA-256 (``report PLAN.json`` shows it); ``run --plan PLAN.json --plan-sha256
DIGEST`` refuses any other file. The plan's own ``fingerprint`` (version 2: a SHA-256 of every other field) catches
an edit made without recomputing it; anyone can recompute an unkeyed digest, which is why the approval is the
file's SHA-256, given with the run, not anything inside the file. Under ``run --plan`` a domain is written only when
the plan planned that very write and Describe still shows the certificate the plan saw; anything else ends
``drifted-since-plan``, unwritten.

Each domain also carries what ACM said of its current certificate and of its target (``current_certificate``,
``target_certificate``: issuer, serial, type, key algorithm, NotAfter; ``fleet.records.certificate_facts``), for
the board to read: optional fields of version 2, null when not known. Plans made before them read as before (their
fingerprint covers the fields they have); the fingerprint of a plan that has them covers them too.
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
from fleet.records.certificate_facts import CertificateFacts, read_facts
from fleet.records.own_files import PLAN, refuse_foreign

FORMAT, VERSION = "cognito-fleet-plan", 2
# Version 1's fingerprint covered only the domains' current certificates (not action, made_at, targets): such a plan
# is still read and rendered, and applied only when pinned by its SHA-256 (check_pinned).
READABLE = frozenset({1, VERSION})
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
    current_certificate: CertificateFacts | None = None  # ACM's facts of the certificate it is on (None: unknown)
    target_certificate: CertificateFacts | None = None  # ... of its target

    def key(self) -> tuple[str, str, str, str, str]:
        return (self.account_id, self.region, self.user_pool_id, self.domain, self.certificate_arn)


def row_key(row: Row) -> tuple[str, str, str, str, str]:
    return (row.account_id, row.region, row.user_pool_id, row.domain, row.certificate_arn)


def fingerprint(document: Mapping[str, object]) -> str:
    """Version 2: SHA-256 of every field of the plan but the fingerprint itself (canonical JSON: sorted keys, no
    spaces), so that an edited action, target, made_at, manifest digest or change reference no longer matches."""
    body = {k: v for k, v in document.items() if k != "fingerprint"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def fingerprint_v1(domains: Iterable[PlannedDomain]) -> str:
    """Version 1: SHA-256 of every domain's current certificate (sorted by domain), and nothing else."""
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
    fingerprint: str = ""  # as the file states it, checked against its content when read
    version: int = VERSION
    change_ref: str | None = None  # the change ticket the plan was made for (plan --change-ref)

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
    change_ref: str | None = None,
) -> None:
    """The plan as JSON, whole or not at all, mode 0600 (files.atomic_writer); never over a file that is not a
    plan (OverwriteRefused)."""
    counts: dict[str, int] = {}
    for d in domains:
        counts[d.action] = counts.get(d.action, 0) + 1
    document: dict[str, object] = {
        "format": FORMAT,
        "version": VERSION,
        "plan_id": plan_id,
        "made_at": stamp(made_at),
        "hub": hub,
        "manifest": {"path": manifest_path, "sha256": file_sha256(manifest_path)},
        "change_ref": change_ref,
        "counts": counts,
        "options": dict(options),
        "domains": [asdict(d) for d in domains],
    }
    document["fingerprint"] = fingerprint(document)
    refuse_foreign(path, PLAN)
    with atomic_writer(path) as fh:
        json.dump(document, fh, indent=1)
        fh.write("\n")


def read_plan(path: Path, pinned: str | None = None) -> Plan:
    """A plan file, checked whole: PlanError (one line naming the file and what is wrong) otherwise. ``pinned``: the
    SHA-256 approved (``--plan-sha256``); the bytes read must have it, checked before anything else in them is."""

    def bad(why: str) -> PlanError:
        return PlanError(f"{path}: not a usable cognito-fleet plan ({why}); make a new one: cognito-fleet plan --out")

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PlanError(f"{path}: cannot read: {exc.strerror or exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    if pinned is not None and digest != pinned:
        raise PlanError(
            f"{path}: SHA-256 {digest} is not the approved {pinned} (--plan-sha256): the file was changed after its "
            "approval; nothing done: apply the approved file, or have this one approved"
        )
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise bad("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise PlanError(f"{path}:{exc.lineno}:{exc.colno}: not a cognito-fleet plan: bad JSON ({exc.msg})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise bad(f'no "format": "{FORMAT}"')
    version = doc.get("version")
    if version not in READABLE:
        raise bad(f"version {version!r}; this tool reads versions {', '.join(map(str, sorted(READABLE)))}")
    made_at = _time(_field(doc, "made_at", str, bad), bad)
    manifest = _field(doc, "manifest", dict, bad)
    raw = _field(doc, "domains", list, bad)
    domains = tuple(_domain(entry, i, bad) for i, entry in enumerate(raw))
    if len({d.domain for d in domains}) != len(domains):
        raise bad("a domain is listed twice")
    change_ref = doc.get("change_ref")
    if change_ref is not None and not isinstance(change_ref, str):
        raise bad(f"change_ref: expected a str or null, found {type(change_ref).__name__}")
    stated = _field(doc, "fingerprint", str, bad)
    plan = Plan(
        path=path,
        sha256=digest,
        plan_id=_field(doc, "plan_id", str, bad),
        made_at=made_at,
        hub=_field(doc, "hub", str, bad),
        manifest_path=_field(manifest, "path", str, bad, "manifest.path"),
        manifest_sha256=_field(manifest, "sha256", str, bad, "manifest.sha256"),
        domains=domains,
        options=_field(doc, "options", dict, bad),
        fingerprint=stated,
        version=int(version),
        change_ref=change_ref,
    )
    if version == 1 and stated != fingerprint_v1(domains):
        raise bad("its fingerprint does not match its domains' current certificates: the file was edited")
    if version != 1 and stated != fingerprint(doc):
        raise bad("its fingerprint does not match its content: the file was edited")
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
    return PlannedDomain(
        **values,
        current_certificate=read_facts(entry.get("current_certificate"), f"{where}.current_certificate", bad),
        target_certificate=read_facts(entry.get("target_certificate"), f"{where}.target_certificate", bad),
    )


def span(delta: timedelta) -> str:
    """7d, 8d2h, 1h30m, 45s: a plan's age in the units people approve in (the two largest)."""
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{n}{unit}" for n, unit in [p for p in parts if p[0]][:2]) or "0s"


# --- run --plan: the checks before anything is called --------------------------------------------------------


def check_usable(plan: Plan, manifest: Path, now: datetime, max_age: float, pinned: bool = True) -> None:
    """Refuse (PlanError, exit 2) a plan older than ``max_age`` seconds, made in the future, or of another manifest
    (its SHA-256 is the rule: the file the board approved, byte for byte); a version 1 plan unless ``pinned`` (its
    fingerprint leaves action and made_at open to an edit)."""
    if plan.version == 1 and not pinned:
        raise PlanError(
            f"{plan.path}: a version 1 plan (its fingerprint does not cover actions, targets or made_at): apply it "
            f"only pinned, --plan-sha256 with the SHA-256 approved (this file's is {plan.sha256}), or make a new plan"
        )
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
    """The plan a run applies: what may be written, and on which certificate each domain must still be; ``pinned``:
    its SHA-256 was checked against the approved one (``--plan-sha256``)."""

    def __init__(self, plan: Plan, pinned: bool = False) -> None:
        self.plan, self.pinned = plan, pinned
        self._by_key = {d.key(): d for d in plan.domains}

    def facts(self) -> dict[str, object]:
        """What ``run_started``, the run record and the change record say of the plan applied."""
        plan = self.plan
        facts: dict[str, object] = {
            "path": str(plan.path),
            "sha256": plan.sha256,
            "plan_id": plan.plan_id,
            "made_at": stamp(plan.made_at),
            "pinned": self.pinned,
        }
        if plan.change_ref:
            facts["change_ref"] = plan.change_ref
        return facts

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
