"""On a terminal, `plan` shows what will happen per domain: up to a screenful, then how many more and where they are."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fleet.outcome import Status
from fleet.records.formatting import short_names
from fleet.records.report import read_report
from fleet.text import printable

# What a change board looks at first: what fails, then what will be written; unchanged domains last.
ORDER = {str(Status.FAILED): 0, str(Status.PLANNED): 1, str(Status.UNCHANGED): 2}
COLUMNS = ("account_id", "region", "domain", "previous_certificate_arn", "certificate_arn", "status", "error_code")
EDGE = ("edge", "edge_not_after")  # what clients are served now (reports before the edge check lack them)
CHROME = 12  # lines around the table: the bar, its title, header and rules, the summary lines below it


def plan_table(report: Path, full: Path, console: Console | None = None) -> int:
    """Print the plan report's domains (failed, planned, unchanged; manifest order within each) as fit the screen;
    the rest as a count naming ``full``, the file that has them all. Returns how many rows were shown."""
    out = console or Console(stderr=True)
    lines = sorted(read_report(report, COLUMNS).lines, key=lambda line: ORDER.get(line["status"], 3))
    edge = any(line.get("edge") for line in lines)
    room = max(out.size.height - CHROME, 5)
    shown = lines if len(lines) <= room else lines[: room - 1]  # one line left for "… and N more"
    names = short_names(a for line in shown for a in (line["previous_certificate_arn"], line["certificate_arn"]))
    table = Table(title="what will happen, per domain")
    headers = ("account", "region", "domain", "current", "target", "will be") + (("edge serves now",) if edge else ())
    for header in headers:
        # One line per domain, cut with an ellipsis rather than wrapped: the screenful counts rows, not lines.
        table.add_column(header, no_wrap=True, overflow="ellipsis")
    for line in shown:
        will = line["status"] + (f" ({line['error_code']})" if line["error_code"] else "")
        cells = (
            line["account_id"],
            line["region"],
            line["domain"],
            names.get(line["previous_certificate_arn"], "—"),
            names.get(line["certificate_arn"], "—"),
            will,
            *((f"{line.get('edge') or '—'} until {(line.get('edge_not_after') or '?')[:10]}",) if edge else ()),
        )
        table.add_row(*(escape(printable(c)) for c in cells))  # text from the manifest and AWS: never markup
    out.print(table)
    if len(shown) < len(lines):
        out.print(escape(f"… and {len(lines) - len(shown)} more domains: see {full}"))
    return len(shown)
