"""`cognito-fleet report`: a report CSV rendered as a change record (Markdown, self-contained HTML)."""

from __future__ import annotations

import csv
import html as htmllib
import json
import re
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from fleet.cli.report_command import report_command
from fleet.errors import EXIT_USAGE, FleetError
from fleet.records.change_record import Record, ReportError, load, load_many, short_names
from fleet.records.html import html
from fleet.records.markdown import markdown
from fleet.records.report import COLUMNS
from fleet.records.run_file import read_run_record

from ..files import csv_rows

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "report-sample.csv"
HUB = "arn:aws:iam::999988887777:role/hub"
VOID = {"meta", "col", "br", "hr", "img", "input", "link"}


@pytest.fixture
def record() -> Record:
    return load(SAMPLE, HUB)


def sample() -> list[dict[str, str]]:
    return csv_rows(SAMPLE)


def test_load_counts_failures_and_places(record: Record) -> None:
    assert record.counts() == {"unchanged": 1, "pending": 2, "verified": 5, "failed": 3, "skipped": 1}
    assert sum(record.counts().values()) == len(record.entries) == 12
    assert sum(e.drift for e in record.entries) == 1
    assert [(code, len(g)) for code, g in record.failures().items()] == [
        ("CertificateNotFound", 2),
        ("AccessDeniedException", 1),
    ]
    assert list(record.places()) == [
        ("111122223333", "eu-west-1"),
        ("111122223333", "us-east-1"),
        ("444455556666", "eu-west-1"),
        ("444455556666", "us-east-1"),
    ]
    span = record.span()
    assert span is not None and (span[0].isoformat(), span[1].isoformat()) == (
        "2025-03-04T09:00:01.120000+00:00",
        "2025-03-04T09:07:48+00:00",
    )
    assert len(record.writes()) == 7  # pending + verified rows with a finish time
    facts = dict(record.facts())
    assert facts["Hub identity"] == HUB and "7 min 47 s" in facts["Time span"]
    assert load(SAMPLE).hub == "unknown"


def test_short_names_shorten_acm_arns_and_keep_clashes_whole() -> None:
    a = "arn:aws:acm:us-east-1:111122223333:certificate/0f2b8c3e-1a2b-4c5d-8e9f-0123456789ab"
    b = "arn:aws:acm:us-east-1:111122223333:certificate/0f2b8c3e-ffff-4c5d-8e9f-0123456789ab"
    c = "arn:aws:acm:us-east-1:111122223333:certificate/7c1d9e20-5b6a-4f3e-9d8c-ba9876543210"
    other = "not-an-arn"
    assert short_names([a, b, c, other, ""]) == {a: a, b: b, c: "7c1d9e20…", other: other}


def md_cells(line: str) -> list[str]:
    """The cells of a GFM table row, split on pipes that are not backslash-escaped, then unescaped."""
    inner = line.strip()[1:-1]
    cells = re.split(r"(?<!\\)(?:\\\\)*\|", inner)
    return [htmllib.unescape(re.sub(r"\\(.)", r"\1", c.strip())) for c in cells]


def md_sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("## "):
            current = line[3:].split(" (")[0]
        sections.setdefault(current, []).append(line)
    return sections


def md_rows(lines: list[str]) -> list[list[str]]:
    """Body rows of every table in ``lines`` (header and rule rows left out)."""
    rows, previous = [], ""
    for line in lines:
        if line.startswith("|") and not previous.startswith("|"):
            header = md_cells(line)
        elif line.startswith("|") and not re.fullmatch(r"\|( -+:? \|)+", line):
            cells = md_cells(line)
            assert len(cells) == len(header), line  # an unescaped | would add a cell
            rows.append(cells)
        previous = line
    return rows


def test_markdown_failures_first_every_domain_once_values_escaped(record: Record) -> None:
    text = markdown(record)
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## Status", "## Failures (3)", "## Domains by account and region", "## Certificates"]
    sections = md_sections(text)
    assert md_rows(sections["Status"])[-1] == ["total", "12"]
    assert {r[0]: r[1] for r in md_rows(sections["Status"])[:-1]} == {s: str(n) for s, n in record.counts().items()}
    failed = md_rows(sections["Failures"])
    assert sorted(r[0] for r in failed) == sorted(r["domain"] for r in sample() if r["status"] == "failed")
    domains = md_rows(sections["Domains by account and region"])
    assert sorted(r[0] for r in domains) == sorted(r["domain"] for r in sample())  # each once, whole
    by_domain = {r[0]: r for r in domains}
    for row in sample():
        assert by_domain[row["domain"]][4] == row["status"]
        assert by_domain[row["domain"]][7] == row["drift"]
    evil = next(r for r in sample() if "<script>" in r["domain"])
    assert "<script" not in text and "&lt;script&gt;" in text
    assert evil["error_message"] in by_domain[evil["domain"]][6]  # `|` and markup came back intact
    arns = {r[1] for r in md_rows(sections["Certificates"])}
    assert arns == {r[c] for r in sample() for c in ("previous_certificate_arn", "certificate_arn")}
    assert "# Change record: report-sample.csv" in text and f"**Hub identity:** {HUB}" in text


class Tags(HTMLParser):
    """Every element (tag, attributes, enclosing section id, text), and a check that end tags match."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str]] = []
        self.elements: list[tuple[str, dict[str, str], str]] = []
        self.mismatched: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        section = values["id"] if tag == "section" else (self.stack[-1][1] if self.stack else "")
        self.elements.append((tag, values, section))
        if tag not in VOID:
            self.stack.append((tag, section))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        section = self.stack[-1][1] if self.stack else ""
        self.elements.append((tag, {k: v or "" for k, v in attrs}, section))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop()[0] != tag:
            self.mismatched.append(tag)


def parsed(text: str) -> Tags:
    tags = Tags()
    tags.feed(text)
    tags.close()
    return tags


def test_html_is_self_contained_escaped_and_complete(record: Record) -> None:
    text = html(record)
    tags = parsed(text)
    assert tags.mismatched == [] and tags.stack == []
    root = ET.fromstring(text.split("\n", 1)[1])  # well-formed XML too (after the doctype line)
    domains = next(s for s in root.iter("section") if s.get("id") == "domains")
    cells = ["".join(tr[0].itertext()) for tbody in domains.iter("tbody") for tr in tbody]
    assert sorted(cells) == sorted(r["domain"] for r in sample())  # each domain once, whole
    assert "<script" not in text.lower() and "&lt;script&gt;" in text
    names = [tag for tag, _, _ in tags.elements]
    assert {"script", "iframe", "object", "embed", "link", "img"}.isdisjoint(names)
    for _, attrs, _ in tags.elements:
        for key in ("src", "href", "action", "xlink:href"):
            assert key not in attrs, attrs
        assert not any(k.startswith("on") for k in attrs), attrs
    assert "http://" not in text and "https://" not in text
    rows = [(attrs, section) for tag, attrs, section in tags.elements if tag == "tr"]
    assert sum(1 for a, s in rows if s == "domains" and "class" in a) == 12
    assert sum(1 for a, s in rows if s == "failures" and a.get("class") == "failed") == 3
    bars = [attrs["data-status"] for tag, attrs, _ in tags.elements if tag == "rect" and attrs.get("class") == "bar"]
    assert bars == list(record.counts())
    titles = {attrs["title"] for tag, attrs, s in tags.elements if tag == "span" and "title" in attrs}
    every_arn = {r[c] for r in sample() for c in ("previous_certificate_arn", "certificate_arn")}
    assert titles == every_arn  # the full ARN behind every short one
    csp = next(a for t, a, _ in tags.elements if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp["content"]
    assert text.index('id="failures"') < text.index('id="domains"')


def test_html_writes_chart_counts_every_write(record: Record) -> None:
    root = ET.fromstring(html(record).split("\n", 1)[1])
    chart = next(svg for svg in root.iter("svg") if svg.get("id") == "writes-chart")
    labels = [rect.findtext("title") or "" for rect in chart.iter("rect")]
    assert sum(int(label.rsplit(": ", 1)[1]) for label in labels) == len(record.writes()) == 7
    line = chart.find("polyline")
    assert line is not None
    heights = [float(p.split(",")[1]) for p in line.get("points", "").split()]
    assert heights[-1] == min(heights) < heights[0]  # the running total climbs to its top: every write
    assert "per 30 s" in "".join(chart.itertext())


def test_empty_report_renders(tmp_path: Path) -> None:
    empty = tmp_path / "empty.report.csv"
    empty.write_text(",".join(COLUMNS) + "\n", encoding="utf-8")
    record = load(empty)
    assert record.entries == () and record.span() is None
    assert "The report has no rows." in markdown(record) and "None: no domain failed." in markdown(record)
    page = html(record)
    assert parsed(page).mismatched == [] and "<svg" not in page and "No writes in this report" in page


def test_run_id_from_the_jsonl_beside(tmp_path: Path) -> None:
    report = tmp_path / "prod.report.csv"
    shutil.copy(SAMPLE, report)
    assert load(report).run_id is None
    (tmp_path / "prod.report.jsonl").write_text(json.dumps({"domain": "a", "run_id": "20250304T0900-ab12"}) + "\n")
    assert load(report).run_id == "20250304T0900-ab12"
    assert "20250304T0900-ab12" in markdown(load(report))


def write_report(path: Path, change: dict[str, str]) -> Path:
    rows = sample()
    rows[3].update(change)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("account_id,region,user_pool_id,domain,certificate_arn\n1,r,p,d,c\n", "missing columns: status"),
        (b"\xff\xfe\x00a,b\n", "not UTF-8"),
        ({"status": "done"}, ":5: status 'done' is not one of"),
        ({"finished_at": "yesterday"}, ":5: 'yesterday' is not an ISO 8601 time"),
    ],
)
def test_not_a_report_names_the_file(tmp_path: Path, content: str | bytes | dict[str, str], message: str) -> None:
    path = tmp_path / "bad.csv"
    if isinstance(content, dict):
        write_report(path, content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ReportError) as caught:
        load(path)
    assert str(caught.value).startswith(str(path)) and message in str(caught.value)
    assert caught.value.exit_code == EXIT_USAGE


def test_command_writes_out_or_stdout_and_refuses_a_non_report(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "records" / "record.html"
    result = runner.invoke(report_command, [str(SAMPLE), "--format", "html", "--out", str(out), "--hub", HUB])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{out}: change record (html) of 12 domains")
    assert out.read_text(encoding="utf-8") == html(load(SAMPLE, HUB))
    assert [p.name for p in out.parent.iterdir()] == ["record.html"]  # no temporary file left

    result = runner.invoke(report_command, [str(SAMPLE)])
    assert result.exit_code == 0 and result.output == markdown(load(SAMPLE))

    bad = tmp_path / "manifest.csv"
    bad.write_text("account_id,region,user_pool_id,domain,certificate_arn\n", encoding="utf-8")
    result = runner.invoke(report_command, [str(bad), "--out", str(tmp_path / "x.md")])
    assert isinstance(result.exception, FleetError) and result.exception.exit_code == EXIT_USAGE
    assert str(bad) in str(result.exception) and not (tmp_path / "x.md").exists()

    result = runner.invoke(report_command, [str(tmp_path / "missing.csv")])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = runner.invoke(report_command, [str(SAMPLE), "--format", "pdf"])
    assert result.exit_code == 2


def _shard(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_several_reports_make_one_record_every_domain_once(tmp_path: Path) -> None:
    rows = sample()
    for row in rows:
        row["edge"] = "served" if row["status"] == "verified" else ""
    rows[1]["edge"] = "old"  # verified on Cognito's word by an older run; its edge was old
    # Three shards of one fleet; the third also carries a later run's row for a domain of the first.
    again = {**rows[1], "status": "verified", "edge": "served", "finished_at": "2025-03-04T10:00:00Z"}
    shards = [
        _shard(tmp_path / "a.csv", rows[:4]),
        _shard(tmp_path / "b.csv", rows[4:8]),
        _shard(tmp_path / "c.csv", [*rows[8:], again]),
    ]
    out = tmp_path / "fleet.md"
    result = CliRunner().invoke(report_command, [*map(str, shards), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"{out}: change record (markdown) of 12 domains from" in result.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Change record: 3 reports")
    # One status table over all shards: the totals of the sample, every domain once.
    assert "| verified | 5 |" in text and "| failed | 3 |" in text and "| total | 12 |" in text
    for row in rows:
        if re.fullmatch(r"[a-z0-9.-]+", row["domain"]):  # (the sample's markup-laden names are escaped)
            assert text.count(f"| {row['domain']} | {row['user_pool_id']} |") == 1, row["domain"]
    assert "5 of 5 verified domains served the new certificate at the edge" in text  # the later row counts
    assert "1 domain in more than one report: the later report counts." in text
    assert f"| {rows[1]['domain']} | {shards[0]} | {shards[2]} |" in text
    for shard in shards:
        digest = __import__("hashlib").sha256(shard.read_bytes()).hexdigest()
        assert f"| {shard} | {digest} |" in text
    page = html(__import__("fleet.records.change_record", fromlist=["load_many"]).load_many(shards))
    assert parsed(page).mismatched == [] and page.count('id="status-chart"') == 1 and 'id="sources"' in page


def test_the_same_report_twice_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(report_command, [str(SAMPLE), str(SAMPLE)])
    assert isinstance(result.exception, ReportError) and "named twice" in str(result.exception)


def test_the_run_record_names_the_plan_and_the_ticket_old_ones_still_read(tmp_path: Path) -> None:
    report = tmp_path / "prod.report.csv"
    shutil.copy(SAMPLE, report)
    digest = "ab" * 32
    run = {"run_id": "r1", "command": "run", "hub": HUB, "counts": '{"verified": 12}', "change_ref": "CHG-7|x"}
    run["plan"] = {"plan_id": "p1", "path": "P.json", "sha256": digest, "pinned": False}  # type: ignore[assignment]
    (tmp_path / "prod.report.run.json").write_text(json.dumps(run), encoding="utf-8")
    assert read_run_record(report)["counts"] == {"verified": 12}  # an older record's counts: JSON text
    record = load(report)
    facts = dict(record.facts())
    assert facts["Change reference"] == "CHG-7|x"
    assert facts["Plan applied"] == f"p1 (P.json), SHA-256 {digest} (NOT pinned: no --plan-sha256)"
    assert "- **Change reference:** CHG-7\\|x" in markdown(record)  # escaped like every value
    assert "<dt>Plan applied</dt>" in html(record) and digest in html(record)
    other = tmp_path / "other.report.csv"
    shutil.copy(SAMPLE, other)
    merged = load_many([report, other])
    assert dict(merged.facts())["Change reference"] == "CHG-7|x"  # several reports: each distinct value once
    (tmp_path / "prod.report.run.json").write_text(json.dumps({"run_id": "r1", "hub": HUB}), encoding="utf-8")
    assert "Plan applied" not in dict(load(report).facts())  # no plan, no ticket: no line
