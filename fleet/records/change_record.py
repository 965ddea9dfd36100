"""The change record's model: a run's report (CSV), or several (the shards of one fleet), read as one record.

Rendered as Markdown for a ticket (``fleet.records.markdown``) or as one self-contained HTML file
(``fleet.records.html``: inline CSS and SVG, no script, no external asset) for a change board or an auditor.
Failures come first, grouped by error code; then every domain, by account and region, with what its edge served.
Several reports make one record: every domain once (a domain in two reports: the later report counts, and the
record says so), and the list of source reports with their SHA-256. Every value from the report is escaped by the
renderers: a domain or an error message is text, never markup.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from fleet.outcome import WRITTEN, Status
from fleet.records.certificate_facts import FACT_HEADER, CertificateFacts
from fleet.records.formatting import at_utc, by_name, duration, plural, short_names
from fleet.records.report import ReportError, jsonl_path, read_report
from fleet.records.run_file import change_ref_of, plan_of, ran_by_of, read_run_record

# Older reports lack some columns (drift, attempts ...); these are the ones a record cannot do without.
REQUIRED = ("account_id", "region", "domain", "status", "previous_certificate_arn", "certificate_arn")
STATUSES = tuple(str(s) for s in Status if s is not Status.IN_FLIGHT)  # report order: the order of the enum
WRITES = frozenset(str(s) for s in WRITTEN)
COLOURS = {
    "planned": "#1565c0",
    "unchanged": "#546e7a",
    "updated": "#00796b",
    "pending": "#a15c00",
    "verified": "#2e7d32",
    "failed": "#c62828",
    "skipped": "#6d4c41",
    "drifted-since-plan": "#6a1b9a",
}
NO_CODE = "(no error code)"
DOMAIN_HEADER = [
    "Domain",
    "User pool",
    "Previous certificate",
    "New certificate",
    "Status",
    "Attempts",
    "Error",
    "Drift",
    "Edge",
]


@dataclass(frozen=True, slots=True)
class Entry:
    """One domain of the report."""

    account_id: str
    region: str
    user_pool_id: str
    domain: str
    previous: str
    certificate: str
    status: str
    attempts: str
    error_code: str
    error_message: str
    started: datetime | None
    finished: datetime | None
    drift: bool
    edge: str = ""  # what the domain's edge served (reports before the edge check have no such column)
    written_by_run: str = ""  # the run whose write put the domain on its target (reports before it: empty)
    written_at: datetime | None = None

    @property
    def error(self) -> str:
        return ": ".join(p for p in (self.error_code, self.error_message) if p)


@dataclass(frozen=True, slots=True)
class Source:
    """One report a record was made from."""

    path: Path
    sha256: str
    rows: int
    counted: int  # its rows that count (a domain also in a later report counts there)


@dataclass(frozen=True, slots=True)
class Record:
    """A report, read (or several, merged): its rows and what identifies it."""

    source: Path
    sha256: str
    run_id: str | None
    hub: str
    entries: tuple[Entry, ...]
    sources: tuple[Source, ...] = ()  # set when the record merges several reports
    ran_by: str = ""  # host, OS user, tool version and manifest digest, from the run record beside the report
    superseded: tuple[tuple[str, Path, Path], ...] = ()  # (domain, earlier report, the later one that counts)
    plan_applied: str = ""  # run --plan: the plan's id, file, SHA-256 and whether it was pinned (the run record's)
    change_ref: str = ""  # --change-ref: the change ticket the run carried out
    kind: ClassVar[str] = "Change record"  # the heading's first words (a plan: fleet/records/plan_record.py)
    shows_writes: ClassVar[bool] = True  # the writes-over-time chart (a plan has no writes yet)

    def extra_markdown(self) -> list[str]:
        """Sections after the status table (none here; a plan adds "What will change")."""
        return []

    def extra_html(self) -> str:
        return ""

    def certificate_facts(self) -> Mapping[str, CertificateFacts]:
        """What is known of each certificate by ARN (issuer, serial, ...): a plan knows; a report does not."""
        return {}

    @property
    def title(self) -> str:
        return f"{len(self.sources)} reports" if self.sources else self.source.name

    def edges(self) -> dict[str, int]:
        """Rows by edge value, most first."""
        return dict(collections.Counter(e.edge for e in self.entries if e.edge).most_common())

    def counts(self) -> dict[str, int]:
        """Rows by status, in the enum's order; only statuses present."""
        seen = collections.Counter(e.status for e in self.entries)
        return {s: seen[s] for s in STATUSES if seen[s]}

    def failures(self) -> dict[str, list[Entry]]:
        """Failed rows by error code, the biggest group first."""
        groups: dict[str, list[Entry]] = collections.defaultdict(list)
        for e in self.entries:
            if e.status == Status.FAILED:
                groups[e.error_code or NO_CODE].append(e)
        return dict(sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])))

    def places(self) -> dict[tuple[str, str], list[Entry]]:
        """Rows by (account, region), sorted; rows keep the report's (manifest's) order."""
        groups: dict[tuple[str, str], list[Entry]] = collections.defaultdict(list)
        for e in self.entries:
            groups[(e.account_id, e.region)].append(e)
        return dict(sorted(groups.items()))

    def writes(self) -> list[datetime]:
        """When each domain's write was answered, in order: the state's time of the write that put it on its
        target (whichever run made it). Reports from before ``written_at`` fall back to when the row ended."""
        if any(e.written_by_run for e in self.entries):
            return sorted(e.written_at for e in self.entries if e.written_at)
        return sorted(e.finished for e in self.entries if e.status in WRITES and e.finished)

    def written_here(self) -> int:
        """Domains this report's run wrote itself."""
        runs = {i.strip() for i in (self.run_id or "").split(",") if i.strip()}
        return sum(bool(e.written_by_run) and e.written_by_run in runs for e in self.entries)

    def written_before(self) -> list[tuple[str, datetime | None, int]]:
        """Domains already on their target from earlier runs: (run, when its last such write was, how many)."""
        runs = {i.strip() for i in (self.run_id or "").split(",") if i.strip()}
        earlier: dict[str, list[datetime | None]] = collections.defaultdict(list)
        for e in self.entries:
            if e.written_by_run and e.written_by_run not in runs:
                earlier[e.written_by_run].append(e.written_at)
        return [(run, max((t for t in times if t), default=None), len(times)) for run, times in sorted(earlier.items())]

    def span(self) -> tuple[datetime, datetime] | None:
        starts = [e.started for e in self.entries if e.started]
        ends = [e.finished for e in self.entries if e.finished]
        if not starts and not ends:
            return None
        return min(starts or ends), max(ends or starts)

    def facts(self) -> list[tuple[str, str]]:
        """The header, as (label, plain text): each renderer escapes it."""
        span = self.span()
        when = f"{at_utc(span[0])} → {at_utc(span[1])} ({duration(span[1] - span[0])})" if span else "no times recorded"
        failed = self.failures()
        accounts = len({e.account_id for e in self.entries})
        regions = len({e.region for e in self.entries})
        drift = sum(e.drift for e in self.entries)
        if self.sources:
            origin = [("Reports", f"{len(self.sources)} (listed under Sources, with their SHA-256)")]
        else:
            origin = [("Report", str(self.source)), ("Report SHA-256", self.sha256)]
        who = [("Hub identity", self.hub)]
        if self.ran_by:
            who.append(("Ran on", self.ran_by))
        who += [(label, text) for label, text in self._approval() if text]
        return [
            ("Run", self.run_id or "not recorded in the report (cognito-fleet history STATE lists the runs)"),
            *origin,
            *who,
            *self._written(),
            ("Time span", when),
            ("Domains", f"{len(self.entries)} in {plural(accounts, 'account')} and {plural(regions, 'region')}"),
            ("Failed", f"{sum(map(len, failed.values()))} ({plural(len(failed), 'error code')})" if failed else "0"),
            ("Drift", f"{drift} (moved off their certificate outside this tool, and written again)" if drift else "0"),
            ("Proven at the edge", self.proof()),
        ]

    def _approval(self) -> list[tuple[str, str]]:
        """Which change ticket the run carried out and which plan it applied (pinned or not), when known."""
        return [("Change reference", self.change_ref), ("Plan applied", self.plan_applied)]

    def _written(self) -> list[tuple[str, str]]:
        if not any(e.written_by_run for e in self.entries):
            return []  # a report from before the tool recorded which run wrote what
        earlier = self.written_before()
        several = "," in (self.run_id or "")
        facts = [("Written in these runs" if several else "Written in this run", str(self.written_here()))]
        if earlier:
            facts.append(
                (
                    "Already on target",
                    "; ".join(f"{n} from run {run}" + (f" at {at_utc(t)}" if t else "") for run, t, n in earlier),
                )
            )
        return facts

    def proof(self) -> str:
        """How many domains were proven at the edge (served the new certificate in a TLS handshake)."""
        edges = self.edges()
        if not edges:
            return "not checked (the report has no edge column, or no domain was checked)"
        verified = sum(e.status == Status.VERIFIED for e in self.entries)
        served = sum(e.status == Status.VERIFIED and e.edge == "served" for e in self.entries)
        rest = ", ".join(f"{k}={v}" for k, v in edges.items())
        return (
            f"{served} of {plural(verified, 'verified domain')} served the new certificate at the edge (edge: {rest})"
        )


def load(report_csv: Path, hub: str | None = None) -> Record:
    """Read a report CSV (as `run`, `plan` or `history --report` write it); ReportError if it is not one."""
    report = read_report(report_csv, REQUIRED)
    entries = tuple(_entry(rec, report_csv, line) for rec, line in zip(report.lines, report.line_numbers, strict=True))
    sha256 = hashlib.sha256(report.data).hexdigest()
    run = read_run_record(report_csv)
    return Record(
        report_csv,
        sha256,
        _run_id(report.lines, report_csv),
        hub or str(run.get("hub") or "unknown"),  # --hub overrides what the run recorded
        entries,
        ran_by=ran_by_of(run),
        plan_applied=plan_of(run),
        change_ref=change_ref_of(run),
    )


def _entry(rec: dict[str, str], path: Path, line: int) -> Entry:
    def get(column: str) -> str:
        return (rec.get(column) or "").strip()

    status = get("status")
    if status not in STATUSES:
        raise ReportError(f"{path}:{line}: status {status!r} is not one of {', '.join(STATUSES)}")
    return Entry(
        account_id=get("account_id"),
        region=get("region"),
        user_pool_id=get("user_pool_id"),
        domain=get("domain"),
        previous=get("previous_certificate_arn"),
        certificate=get("certificate_arn"),
        status=status,
        attempts=get("attempts"),
        error_code=get("error_code"),
        error_message=get("error_message"),
        started=_time(get("started_at"), path, line),
        finished=_time(get("finished_at"), path, line),
        drift=get("drift").lower() in ("yes", "true", "1"),
        edge=get("edge"),
        written_by_run=get("written_by_run"),
        written_at=_time(get("written_at"), path, line),
    )


def _time(value: str, path: Path, line: int) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ReportError(f"{path}:{line}: {value!r} is not an ISO 8601 time") from None
    return moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)


def merge(records: list[Record], hub: str | None = None) -> Record:
    """Several reports (the shards of one fleet, or any) as one record: every domain once, the later report's row
    where a domain is in several (in the order given), and the sources listed with their SHA-256."""
    if len(records) == 1:
        return records[0]
    rows: dict[str, tuple[Entry, Path]] = {}
    superseded = []
    for record in records:
        for entry in record.entries:
            if entry.domain in rows:
                superseded.append((entry.domain, rows[entry.domain][1], record.source))
                del rows[entry.domain]  # re-inserted: the later report's position
            rows[entry.domain] = (entry, record.source)
    counted = collections.Counter(source for _, source in rows.values())
    sources = tuple(Source(r.source, r.sha256, len(r.entries), counted[r.source]) for r in records)
    run_ids = sorted({i.strip() for r in records if r.run_id for i in r.run_id.split(",")})
    return Record(
        source=records[-1].source,
        sha256="",
        run_id=", ".join(run_ids) or None,
        hub=hub or _one_hub(records),
        entries=tuple(entry for entry, _ in rows.values()),
        sources=sources,
        superseded=tuple(superseded),
        plan_applied="; ".join(_distinct(r.plan_applied for r in records)),
        change_ref=", ".join(_distinct(r.change_ref for r in records)),
    )


def _distinct(values: Iterable[str]) -> list[str]:
    """Non-empty values, each once, in order."""
    return list(dict.fromkeys(v for v in values if v))


def _one_hub(records: list[Record]) -> str:
    """The hub identity of several reports: theirs when they agree, else each (a fleet run by two hubs)."""
    hubs = sorted({r.hub for r in records if r.hub != "unknown"})
    return ", ".join(hubs) or "unknown"


def load_many(reports: list[Path], hub: str | None = None) -> Record:
    """``load`` each report (ReportError names the file), then ``merge`` them."""
    if len({p.resolve() for p in reports}) != len(reports):
        raise ReportError("the same report is named twice: " + ", ".join(map(str, reports)))
    return merge([load(p, hub) for p in reports], hub)


def _run_id(rows: list[dict[str, str]], path: Path) -> str | None:
    """The run id, if the CSV or the JSON Lines beside it carry one (today's reports do not)."""
    ids = {r.get("run_id") or "" for r in rows}
    if not ids - {""}:
        # No JSONL, or not ours: the id stays unknown.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            lines = jsonl_path(path).read_text(encoding="utf-8").splitlines()
            ids = {str(json.loads(line).get("run_id") or "") for line in lines if line.strip()}
    return ", ".join(sorted(ids - {""})) or None


# --- shared by the renderers -------------------------------------------------------------------------------------


def certificate_names(record: Record) -> dict[str, str]:
    return short_names(a for e in record.entries for a in (e.previous, e.certificate))


def certificate_header(record: Record) -> list[str]:
    """The certificates table's columns: with the facts' columns when the record knows any."""
    return ["Shown as", "ARN", *(FACT_HEADER if record.certificate_facts() else [])]


def certificate_rows(record: Record, names: Mapping[str, str]) -> list[list[str]]:
    """One row per certificate (plain text, escaped by each renderer), sorted by its shown name."""
    facts = record.certificate_facts()
    out = []
    for arn, short in sorted(names.items(), key=by_name):
        known = facts.get(arn)
        out.append([short, arn, *((known.cells() if known else [""] * len(FACT_HEADER)) if facts else [])])
    return out


SOURCE_HEADER = ["Report", "SHA-256", "Rows", "Counted"]


def source_rows(record: Record) -> list[list[str]]:
    return [[str(s.path), s.sha256, str(s.rows), str(s.counted)] for s in record.sources]


def superseded_rows(record: Record) -> list[list[str]]:
    return [[domain, str(earlier), str(later)] for domain, earlier, later in record.superseded]
