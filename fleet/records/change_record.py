"""`cognito-fleet report`: a run's report (CSV), or several (the shards of one fleet), as a change record people read.

Markdown for a ticket, or one self-contained HTML file (inline CSS and SVG, no script, no external asset) for a
change board or an auditor. Failures come first, grouped by error code; then every domain, by account and region,
with what its edge served. Several reports make one record: every domain once (a domain in two reports: the later
report counts, and the record says so), and the list of source reports with their SHA-256.
Every value from the report is escaped: a domain or an error message is text, never markup.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import ClassVar

import click

from fleet.files import atomic_writer
from fleet.outcome import WRITTEN, Status
from fleet.records.report import ReportError, jsonl_path, read_report, run_record_path
from fleet.text import printable

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
    kind: ClassVar[str] = "Change record"  # the heading's first words (a plan: fleet/plan_record.py)
    shows_writes: ClassVar[bool] = True  # the writes-over-time chart (a plan has no writes yet)

    def extra_markdown(self) -> list[str]:
        """Sections after the status table (none here; a plan adds "What will change")."""
        return []

    def extra_html(self) -> str:
        return ""

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
        when = f"{_at(span[0])} → {_at(span[1])} ({_duration(span[1] - span[0])})" if span else "no times recorded"
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
        return [
            ("Run", self.run_id or "not recorded in the report (cognito-fleet history STATE lists the runs)"),
            *origin,
            *who,
            *self._written(),
            ("Time span", when),
            ("Domains", f"{len(self.entries)} in {_n(accounts, 'account')} and {_n(regions, 'region')}"),
            ("Failed", f"{sum(map(len, failed.values()))} ({_n(len(failed), 'error code')})" if failed else "0"),
            ("Drift", f"{drift} (moved off their certificate outside this tool, and written again)" if drift else "0"),
            ("Proven at the edge", self.proof()),
        ]

    def _written(self) -> list[tuple[str, str]]:
        if not any(e.written_by_run for e in self.entries):
            return []  # a report from before the tool recorded which run wrote what
        earlier = self.written_before()
        facts = [("Written in this run", str(self.written_here()))]
        if earlier:
            facts.append(
                (
                    "Already on target",
                    "; ".join(f"{n} from run {run}" + (f" at {_at(t)}" if t else "") for run, t, n in earlier),
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
        return f"{served} of {_n(verified, 'verified domain')} served the new certificate at the edge (edge: {rest})"


def load(report_csv: Path, hub: str | None = None) -> Record:
    """Read a report CSV (as `run`, `plan` or `history --report` write it); ReportError if it is not one."""
    report = read_report(report_csv, REQUIRED)
    entries = tuple(_entry(rec, report_csv, line) for rec, line in zip(report.lines, report.line_numbers, strict=True))
    sha256 = hashlib.sha256(report.data).hexdigest()
    run = _run_record(report_csv)
    return Record(
        report_csv,
        sha256,
        _run_id(report.lines, report_csv),
        hub or str(run.get("hub") or "unknown"),  # --hub overrides what the run recorded
        entries,
        ran_by=_ran_by(run),
    )


def _run_record(report_csv: Path) -> dict[str, object]:
    """The run record `run` writes beside its report (NAME.report.run.json), if there is one."""
    try:
        data = json.loads(run_record_path(report_csv).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _ran_by(run: dict[str, object]) -> str:
    parts = []
    if run.get("user") or run.get("host"):
        parts.append(f"{run.get('user') or '?'}@{run.get('host') or '?'}")
    if run.get("version"):
        parts.append(f"cognito-fleet {run['version']}")
    if run.get("manifest"):
        digest = f" (SHA-256 {run['manifest_sha256']})" if run.get("manifest_sha256") else ""
        parts.append(f"manifest {run['manifest']}{digest}")
    return ", ".join(parts)


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
        hub=hub or "unknown",
        entries=tuple(entry for entry, _ in rows.values()),
        sources=sources,
        superseded=tuple(superseded),
    )


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


# --- shared formatting --------------------------------------------------------------------------------------

_ACM = re.compile(r"arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/([0-9a-f-]{8,})")


def short_names(arns: Iterable[str]) -> dict[str, str]:
    """Display names for certificate ARNs: the first 8 hex digits of the certificate id (as the ACM console
    shortens them); a clash (or anything not an ACM ARN) keeps the whole ARN."""
    names = {}
    for arn in set(arns) - {""}:
        match = _ACM.fullmatch(arn)
        names[arn] = match.group(1)[:8] + "…" if match else arn
    clashes = {n for n, k in collections.Counter(names.values()).items() if k > 1}
    return {arn: arn if name in clashes else name for arn, name in names.items()}


def _certificates(record: Record) -> dict[str, str]:
    return short_names(a for e in record.entries for a in (e.previous, e.certificate))


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _duration(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s"


# --- Markdown -----------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*\[\]|~])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def _md(text: str) -> str:
    """Text in GitHub-flavoured Markdown: no HTML (entities), no emphasis/code/link/table syntax (backslashes),
    one line. An underscore inside a word is left alone: it is not emphasis there."""
    text = escape(printable(" ".join(text.split())), quote=False)
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), text)


def _md_table(header: list[str], rows: Iterable[list[str]], right: frozenset[int] = frozenset()) -> list[str]:
    """A GFM table; cells are escaped here, so a `|` in a value stays in its cell."""
    rule = ["---:" if i in right else "---" for i in range(len(header))]
    lines = [header, rule, *([_md(c) or " " for c in row] for row in rows)]
    return ["| " + " | ".join(line) + " |" for line in lines]


def markdown(record: Record) -> str:
    """The record as a GitHub-flavoured Markdown document."""
    names = _certificates(record)
    out = [f"# {record.kind}: {_md(record.title)}", ""]
    out += [f"- **{label}:** {_md(text)}" for label, text in record.facts()]
    counts = record.counts()
    out += ["", "## Status", ""]
    total = [["total", str(len(record.entries))]]
    out += _md_table(["Status", "Domains"], [*([s, str(n)] for s, n in counts.items()), *total], frozenset({1}))
    writes = record.writes()
    if writes:
        here = f" ({record.written_here()} in this run)" if any(e.written_by_run for e in record.entries) else ""
        out += ["", f"{len(writes)} writes{here} were answered between {_at(writes[0])} and {_at(writes[-1])}."]
    out += record.extra_markdown()
    failures = record.failures()
    out += ["", f"## Failures ({sum(map(len, failures.values()))})", ""]
    if not failures:
        out += ["None: no domain failed.", ""]
    for code, group in failures.items():
        out += [f"### {_md(code)} ({len(group)})", ""]
        out += _md_table(
            ["Domain", "Account", "Region", "Error message"],
            ([e.domain, e.account_id, e.region, e.error_message] for e in group),
        )
        out += [""]
    out += ["## Domains by account and region", ""]
    if not record.entries:
        out += ["The report has no rows.", ""]
    for (account, region), group in record.places().items():
        out += [f"### Account {_md(account)}, {_md(region)} ({len(group)})", ""]
        out += _md_table(
            DOMAIN_HEADER,
            (
                [
                    e.domain,
                    e.user_pool_id,
                    names.get(e.previous, "—"),
                    names.get(e.certificate, "—"),
                    e.status,
                    e.attempts,
                    e.error,
                    "yes" if e.drift else "",
                    e.edge,
                ]
                for e in group
            ),
            frozenset({5}),
        )
        out += [""]
    if names:
        out += ["## Certificates", ""]
        out += _md_table(["Shown as", "ARN"], ([short, arn] for arn, short in sorted(names.items(), key=_by_name)))
    if record.sources:
        out += ["", "## Sources", ""]
        out += _md_table(SOURCE_HEADER, _source_rows(record), frozenset({2, 3}))
        if record.superseded:
            out += ["", f"{_n(len(record.superseded), 'domain')} in more than one report: the later report counts.", ""]
            out += _md_table(["Domain", "Not counted from", "Counted from"], _superseded_rows(record))
    return "\n".join(out).rstrip("\n") + "\n"


SOURCE_HEADER = ["Report", "SHA-256", "Rows", "Counted"]


def _source_rows(record: Record) -> list[list[str]]:
    return [[str(s.path), s.sha256, str(s.rows), str(s.counted)] for s in record.sources]


def _superseded_rows(record: Record) -> list[list[str]]:
    return [[domain, str(earlier), str(later)] for domain, earlier, later in record.superseded]


def _by_name(item: tuple[str, str]) -> tuple[str, str]:
    return item[1], item[0]


# --- HTML ---------------------------------------------------------------------------------------------------

# Polyglot markup (void elements closed, attributes quoted, no named entities but XML's), so an XML parser reads
# it too. The CSP forbids every load and every script: the file works offline and nothing in it can run.
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1f2328;
 margin:0 auto;max-width:1140px;padding:24px}
h1{font-size:24px;margin:0 0 12px}
h2{font-size:19px;border-bottom:1px solid #d0d7de;padding-bottom:4px;margin:32px 0 12px}
h3{font-size:15px;margin:20px 0 6px}
h3 .mono{font-size:inherit}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:3px 16px;margin:0}
dt{font-weight:600;color:#57606a}
dd{margin:0;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;table-layout:fixed;margin-bottom:8px}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
td{overflow-wrap:anywhere}
thead th{background:#f6f8fa}
td.num,th.num{text-align:right}
tr.failed td{background:#fff1f0}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:12px}
.pill{display:inline-block;white-space:nowrap;padding:0 8px;border-radius:10px;color:#fff;font-size:12px}
.pill{font-weight:600}
.summary{display:flex;gap:40px;flex-wrap:wrap;align-items:flex-start}
table.counts{width:auto;min-width:220px}
svg text{font-family:system-ui,"DejaVu Sans",sans-serif;font-size:12px;fill:#1f2328}
svg .axis{stroke:#57606a;stroke-width:1}
svg .grid{stroke:#d0d7de;stroke-dasharray:3 3}
footer{margin-top:32px;color:#57606a;font-size:12px}
@media print{body{padding:0;max-width:none}h2,h3{break-after:avoid}tr{break-inside:avoid}}
"""


def _e(value: object) -> str:
    return escape(printable(str(value), newlines=True), quote=True)


def _wrap(value: str) -> str:
    """Escaped, with line-break opportunities after dots and underscores: a long domain or pool id wraps there,
    not mid-label."""
    return _e(value).replace(".", ".<wbr />").replace("_", "_<wbr />")


def _pill(status: str) -> str:
    return f'<span class="pill" style="background:{COLOURS.get(status, "#57606a")}">{_e(status)}</span>'


def _arn(arn: str, names: dict[str, str]) -> str:
    return f'<span class="mono" title="{_e(arn)}">{_e(names[arn])}</span>' if arn else "—"


def _html_table(header: list[str], rows: Iterable[list[str]], widths: list[int], row_class: list[str]) -> str:
    """A table of cells that are already HTML (each value escaped by the caller)."""
    cols = "".join(f'<col style="width:{w}%" />' for w in widths)
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in header)
    body = "".join(
        f'<tr class="{cls}">' + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
        for row, cls in zip(rows, row_class, strict=True)
    )
    return f"<table><colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html(record: Record) -> str:
    """The record as one self-contained HTML page: inline CSS and SVG charts, no script, no external asset."""
    names = _certificates(record)
    facts = "".join(f"<dt>{_e(label)}</dt><dd>{_e(text)}</dd>" for label, text in record.facts())
    counts = record.counts()
    count_rows = "".join(f'<tr><td>{_pill(s)}</td><td class="num">{n}</td></tr>' for s, n in counts.items())
    writes = record.writes()
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8" />',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\" />",
        '<meta name="viewport" content="width=device-width, initial-scale=1" />',
        f"<title>{_e(record.kind)}: {_e(record.title)}</title><style>{_CSS}</style></head><body>",
        f'<header><h1>{_e(record.kind)}: {_e(record.title)}</h1><dl class="facts">{facts}</dl></header>',
        '<section id="status"><h2>Status</h2><div class="summary">',
        '<table class="counts"><thead><tr><th scope="col">Status</th><th scope="col" class="num">Domains</th></tr>'
        f'</thead><tbody>{count_rows}<tr><th scope="row">total</th><td class="num">{len(record.entries)}</td>'
        "</tr></tbody></table>",
        _status_svg(counts) if counts else "<p>The report has no rows.</p>",
        "</div>",
        *(
            [
                "<h3>Writes over time</h3>",
                _writes_svg(writes) if writes else "<p>No writes in this report (no pending or verified domain).</p>",
            ]
            if record.shows_writes
            else []
        ),
        "</section>",
        record.extra_html(),
        _failures_html(record),
        _domains_html(record, names),
    ]
    if names:
        key = sorted(names.items(), key=_by_name)
        parts += [
            '<section id="certificates"><h2>Certificates</h2>',
            _html_table(
                ["Shown as", "ARN"],
                ([f'<span class="mono">{_e(s)}</span>', f'<span class="mono">{_e(a)}</span>'] for a, s in key),
                [15, 85],
                [""] * len(key),
            ),
            "</section>",
        ]
    if record.sources:
        parts.append(_sources_html(record))
    origin = f"{len(record.sources)} reports" if record.sources else str(record.source)
    parts.append(f"<footer>Rendered by cognito-fleet from {_e(origin)}.</footer></body></html>\n")
    return "\n".join(parts)


def _sources_html(record: Record) -> str:
    def mono(cells: list[str]) -> list[str]:
        return [f'<span class="mono">{_e(c)}</span>' for c in cells]

    rows = [mono(r) for r in _source_rows(record)]
    out = ['<section id="sources"><h2>Sources</h2>', _html_table(SOURCE_HEADER, rows, [40, 44, 8, 8], [""] * len(rows))]
    if record.superseded:
        out.append(f"<p>{_n(len(record.superseded), 'domain')} in more than one report: the later report counts.</p>")
        rows = [mono(r) for r in _superseded_rows(record)]
        out.append(_html_table(["Domain", "Not counted from", "Counted from"], rows, [30, 35, 35], [""] * len(rows)))
    return "".join(out) + "</section>"


def _failures_html(record: Record) -> str:
    failures = record.failures()
    out = [f'<section id="failures"><h2>Failures ({sum(map(len, failures.values()))})</h2>']
    if not failures:
        out.append("<p>None: no domain failed.</p>")
    for code, group in failures.items():
        out.append(f'<h3><span class="mono">{_e(code)}</span> ({len(group)})</h3>')
        rows = ([_wrap(e.domain), _e(e.account_id), _e(e.region), _e(e.error_message)] for e in group)
        out.append(
            _html_table(
                ["Domain", "Account", "Region", "Error message"], rows, [30, 14, 12, 44], ["failed"] * len(group)
            )
        )
    return "".join(out) + "</section>"


def _domains_html(record: Record, names: dict[str, str]) -> str:
    out = ['<section id="domains"><h2>Domains by account and region</h2>']
    if not record.entries:
        out.append("<p>The report has no rows.</p>")
    for (account, region), group in record.places().items():
        out.append(f'<h3>Account <span class="mono">{_e(account)}</span>, {_e(region)} ({len(group)})</h3>')
        rows = (
            [
                _wrap(e.domain),
                f'<span class="mono">{_wrap(e.user_pool_id)}</span>',
                _arn(e.previous, names),
                _arn(e.certificate, names),
                _pill(e.status),
                _e(e.attempts),
                _e(e.error),
                "yes" if e.drift else "",
                _e(e.edge),
            ]
            for e in group
        )
        widths = [18, 13, 10, 10, 10, 7, 19, 6, 7]
        out.append(_html_table(DOMAIN_HEADER, rows, widths, [e.status for e in group]))
    return "".join(out) + "</section>"


def _status_svg(counts: dict[str, int]) -> str:
    """Horizontal bars, one per status present, each labelled with its status and count."""
    row, label_w, bar_w, pad = 28, 90, 300, 10
    width, height = label_w + bar_w + 50, pad * 2 + row * len(counts)
    top = max(counts.values())
    out = [
        f'<svg id="status-chart" role="img" aria-labelledby="status-chart-title" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title id="status-chart-title">Domains by status</title>'
    ]
    for i, (status, n) in enumerate(counts.items()):
        y, w = pad + i * row, max(2.0, n / top * bar_w)
        out.append(
            f'<text x="{label_w - 8}" y="{y + row / 2 + 4}" text-anchor="end">{_e(status)}</text>'
            f'<rect class="bar" data-status="{_e(status)}" x="{label_w}" y="{y + 4}" width="{w:.1f}" '
            f'height="{row - 8}" fill="{COLOURS.get(status, "#57606a")}"><title>{_e(status)}: {n}</title></rect>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + row / 2 + 4}">{n}</text>'
        )
    return "".join(out) + "</svg>"


BUCKETS = (1, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86400)  # seconds


def _buckets(times: list[datetime]) -> tuple[int, datetime, list[int]]:
    """The smallest bucket (from BUCKETS) that keeps the histogram to at most 30 bars (wide enough to show a
    rate); its start and counts."""
    first, last = times[0].timestamp(), times[-1].timestamp()
    size = next((b for b in BUCKETS if (last - first) / b < 30), math.ceil((last - first) / 29))
    start = first // size * size
    counts = [0] * (int((last - start) // size) + 1)
    for t in times:
        counts[int((t.timestamp() - start) // size)] += 1
    return size, datetime.fromtimestamp(start, UTC), counts


def _per(size: int) -> str:
    for unit, seconds in (("day", 86400), ("h", 3600), ("min", 60)):
        if size % seconds == 0:
            n = size // seconds
            return f"{n} {unit}" if n > 1 else {"day": "day", "h": "hour", "min": "minute"}[unit]
    return f"{size} s" if size > 1 else "second"


def _writes_svg(times: list[datetime]) -> str:
    """Writes ended per bucket (bars, left axis) and their running total (line, right axis), times in UTC."""
    size, start, counts = _buckets(times)
    width, height, left, right, top_m, bottom_m = 760, 250, 56, 64, 28, 56
    pw, ph = width - left - right, height - top_m - bottom_m
    base, bw, peak, total = top_m + ph, pw / len(counts), max(counts), len(times)
    per = _per(size)
    out = [
        f'<svg id="writes-chart" role="img" aria-labelledby="writes-chart-title" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title id="writes-chart-title">Writes ended per {_e(per)}, and in total'
        "</title>",
        f'<text x="{left}" y="16">bars: writes ended per {_e(per)} (left axis) · line: all writes so far '
        "(right axis)</text>",
        f'<line class="grid" x1="{left}" y1="{top_m}" x2="{left + pw}" y2="{top_m}" />',
    ]
    for i, n in enumerate(counts):
        if n:
            x, h, w = left + i * bw, n / peak * ph, min(bw * 0.8, 40)  # a few wide buckets: slim bars
            when = _at(start + timedelta(seconds=i * size))
            out.append(
                f'<rect class="write" x="{x + (bw - w) / 2:.1f}" y="{base - h:.1f}" width="{max(w, 1):.1f}" '
                f'height="{h:.1f}" fill="#2e7d32" fill-opacity="0.55"><title>{when}: {n}</title></rect>'
            )
    running, points = 0, [f"{left},{base}"]
    for i, n in enumerate(counts):
        running += n
        points.append(f"{left + (i + 1) * bw:.1f},{base - running / total * ph:.1f}")
    end = start + timedelta(seconds=len(counts) * size)
    out += [
        f'<polyline points="{" ".join(points)}" fill="none" stroke="#1565c0" stroke-width="2" />',
        f'<line class="axis" x1="{left}" y1="{top_m}" x2="{left}" y2="{base}" />',
        f'<line class="axis" x1="{left}" y1="{base}" x2="{left + pw}" y2="{base}" />',
        f'<line class="axis" x1="{left + pw}" y1="{top_m}" x2="{left + pw}" y2="{base}" />',
        f'<text x="{left - 6}" y="{base + 4}" text-anchor="end">0</text>',
        f'<text x="{left - 6}" y="{top_m + 4}" text-anchor="end">{peak}</text>',
        f'<text x="{left + pw + 6}" y="{base + 4}">0</text>',
        f'<text x="{left + pw + 6}" y="{top_m + 4}" fill="#1565c0">{total}</text>',
        f'<text x="{left}" y="{base + 18}">{start:%H:%M:%S}</text>',
        f'<text x="{left + pw}" y="{base + 18}" text-anchor="end">{end:%H:%M:%S}</text>',
        f'<text x="{left + pw / 2}" y="{base + 40}" text-anchor="middle">time (UTC, {start:%Y-%m-%d})</text>',
        f'<text transform="translate(16 {top_m + ph / 2}) rotate(-90)" text-anchor="middle">per {_e(per)}</text>',
        f'<text transform="translate({width - 12} {top_m + ph / 2}) rotate(90)" text-anchor="middle">'
        "all writes so far</text>",
    ]
    return "".join(out) + "</svg>"


# --- the command --------------------------------------------------------------------------------------------

RENDERERS: dict[str, Callable[[Record], str]] = {"markdown": markdown, "html": html}


@click.command("report")
@click.argument("reports", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(RENDERERS)),
    default="markdown",
    show_default=True,
    help="markdown: for a ticket; html: one self-contained page (inline CSS and SVG charts, no script).",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="File to write [default: stdout].")
@click.option(
    "--hub", metavar="ARN", help="The hub (calling) identity ARN the run used, for the header [default: unknown]."
)
def report_command(reports: tuple[Path, ...], fmt: str, out: Path | None, hub: str | None) -> None:
    """Render REPORTS (CSVs `run` or `plan` wrote: one, or the shards of a fleet) as one change record: failures
    first, then every domain once (in several reports: the later one counts). A plan file (`plan --out`) renders
    as the plan to approve: what will change."""
    from fleet.records.plan_record import is_plan, load_plan_record  # the plan's record builds on this module

    if any(is_plan(p) for p in reports):
        if len(reports) > 1:
            raise click.UsageError("a plan file is rendered alone: give one PLAN.json")
        record: Record = load_plan_record(reports[0])
    else:
        record = load_many(list(reports), hub)
    text = RENDERERS[fmt](record)
    if out is None:
        click.echo(text, nl=False)
        return
    with atomic_writer(out) as fh:
        fh.write(text)
    origin = ", ".join(map(str, reports))
    click.echo(f"{out}: change record ({fmt}) of {len(record.entries)} domains from {origin}")
