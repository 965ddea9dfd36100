"""The change record as one self-contained HTML page: inline CSS and SVG charts, no script, no external asset;
every value escaped (a Content-Security-Policy of default-src 'none' backs that up)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from html import escape

from fleet.records.change_record import (
    COLOURS,
    DOMAIN_HEADER,
    SOURCE_HEADER,
    Record,
    certificate_header,
    certificate_names,
    certificate_rows,
    source_rows,
    superseded_rows,
)
from fleet.records.formatting import at_utc, plural
from fleet.text import printable

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


def esc(value: object) -> str:
    return escape(printable(str(value), newlines=True), quote=True)


def wrappable(value: str) -> str:
    """Escaped, with line-break opportunities after dots and underscores: a long domain or pool id wraps there,
    not mid-label."""
    return esc(value).replace(".", ".<wbr />").replace("_", "_<wbr />")


def _pill(status: str) -> str:
    return f'<span class="pill" style="background:{COLOURS.get(status, "#57606a")}">{esc(status)}</span>'


def arn_cell(arn: str, names: dict[str, str]) -> str:
    return f'<span class="mono" title="{esc(arn)}">{esc(names[arn])}</span>' if arn else "—"


def html_table(header: list[str], rows: Iterable[list[str]], widths: list[int], row_class: list[str]) -> str:
    """A table of cells that are already HTML (each value escaped by the caller)."""
    cols = "".join(f'<col style="width:{w}%" />' for w in widths)
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in header)
    body = "".join(
        f'<tr class="{cls}">' + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
        for row, cls in zip(rows, row_class, strict=True)
    )
    return f"<table><colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html(record: Record) -> str:
    """The record as one self-contained HTML page: inline CSS and SVG charts, no script, no external asset."""
    names = certificate_names(record)
    facts = "".join(f"<dt>{esc(label)}</dt><dd>{esc(text)}</dd>" for label, text in record.facts())
    counts = record.counts()
    count_rows = "".join(f'<tr><td>{_pill(s)}</td><td class="num">{n}</td></tr>' for s, n in counts.items())
    writes = record.writes()
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8" />',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\" />",
        '<meta name="viewport" content="width=device-width, initial-scale=1" />',
        f"<title>{esc(record.kind)}: {esc(record.title)}</title><style>{_CSS}</style></head><body>",
        f'<header><h1>{esc(record.kind)}: {esc(record.title)}</h1><dl class="facts">{facts}</dl></header>',
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
        parts.append(_certificates_html(record, names))
    if record.sources:
        parts.append(_sources_html(record))
    origin = f"{len(record.sources)} reports" if record.sources else str(record.source)
    parts.append(f"<footer>Rendered by cognito-fleet from {esc(origin)}.</footer></body></html>\n")
    return "\n".join(parts)


def _certificates_html(record: Record, names: dict[str, str]) -> str:
    """Each certificate's shown name and ARN (and, when the record knows them, its issuer, serial, ...)."""
    header, rows = certificate_header(record), certificate_rows(record, names)
    widths = [15, 85] if len(header) == 2 else [10, 28, 14, 18, 8, 9, 13]
    mono = {0, 1, 3}  # shown name, ARN, serial
    cells = ([f'<span class="mono">{esc(c)}</span>' if i in mono else esc(c) for i, c in enumerate(r)] for r in rows)
    table = html_table(header, cells, widths, [""] * len(rows))
    return f'<section id="certificates"><h2>Certificates</h2>{table}</section>'


def _sources_html(record: Record) -> str:
    def mono(cells: list[str]) -> list[str]:
        return [f'<span class="mono">{esc(c)}</span>' for c in cells]

    rows = [mono(r) for r in source_rows(record)]
    out = ['<section id="sources"><h2>Sources</h2>', html_table(SOURCE_HEADER, rows, [40, 44, 8, 8], [""] * len(rows))]
    if record.superseded:
        out.append(
            f"<p>{plural(len(record.superseded), 'domain')} in more than one report: the later report counts.</p>"
        )
        rows = [mono(r) for r in superseded_rows(record)]
        out.append(html_table(["Domain", "Not counted from", "Counted from"], rows, [30, 35, 35], [""] * len(rows)))
    return "".join(out) + "</section>"


def _failures_html(record: Record) -> str:
    failures = record.failures()
    out = [f'<section id="failures"><h2>Failures ({sum(map(len, failures.values()))})</h2>']
    if not failures:
        out.append("<p>None: no domain failed.</p>")
    for code, group in failures.items():
        out.append(f'<h3><span class="mono">{esc(code)}</span> ({len(group)})</h3>')
        rows = ([wrappable(e.domain), esc(e.account_id), esc(e.region), esc(e.error_message)] for e in group)
        out.append(
            html_table(
                ["Domain", "Account", "Region", "Error message"], rows, [30, 14, 12, 44], ["failed"] * len(group)
            )
        )
    return "".join(out) + "</section>"


def _domains_html(record: Record, names: dict[str, str]) -> str:
    out = ['<section id="domains"><h2>Domains by account and region</h2>']
    if not record.entries:
        out.append("<p>The report has no rows.</p>")
    for (account, region), group in record.places().items():
        out.append(f'<h3>Account <span class="mono">{esc(account)}</span>, {esc(region)} ({len(group)})</h3>')
        rows = (
            [
                wrappable(e.domain),
                f'<span class="mono">{wrappable(e.user_pool_id)}</span>',
                arn_cell(e.previous, names),
                arn_cell(e.certificate, names),
                _pill(e.status),
                esc(e.attempts),
                esc(e.error),
                "yes" if e.drift else "",
                esc(e.edge),
            ]
            for e in group
        )
        widths = [18, 13, 10, 10, 10, 7, 19, 6, 7]
        out.append(html_table(DOMAIN_HEADER, rows, widths, [e.status for e in group]))
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
            f'<text x="{label_w - 8}" y="{y + row / 2 + 4}" text-anchor="end">{esc(status)}</text>'
            f'<rect class="bar" data-status="{esc(status)}" x="{label_w}" y="{y + 4}" width="{w:.1f}" '
            f'height="{row - 8}" fill="{COLOURS.get(status, "#57606a")}"><title>{esc(status)}: {n}</title></rect>'
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
        f'viewBox="0 0 {width} {height}"><title id="writes-chart-title">Writes ended per {esc(per)}, and in total'
        "</title>",
        f'<text x="{left}" y="16">bars: writes ended per {esc(per)} (left axis) · line: all writes so far '
        "(right axis)</text>",
        f'<line class="grid" x1="{left}" y1="{top_m}" x2="{left + pw}" y2="{top_m}" />',
    ]
    for i, n in enumerate(counts):
        if n:
            x, h, w = left + i * bw, n / peak * ph, min(bw * 0.8, 40)  # a few wide buckets: slim bars
            when = at_utc(start + timedelta(seconds=i * size))
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
        f'<text transform="translate(16 {top_m + ph / 2}) rotate(-90)" text-anchor="middle">per {esc(per)}</text>',
        f'<text transform="translate({width - 12} {top_m + ph / 2}) rotate(90)" text-anchor="middle">'
        "all writes so far</text>",
    ]
    return "".join(out) + "</svg>"
