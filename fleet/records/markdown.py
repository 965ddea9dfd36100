"""The change record as GitHub-flavoured Markdown (for a ticket): every value escaped, never markup."""

from __future__ import annotations

import re
from collections.abc import Iterable
from html import escape

from fleet.records.change_record import (
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

# --- Markdown -----------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*\[\]|~])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def _md(text: str) -> str:
    """Text in GitHub-flavoured Markdown: no HTML (entities), no emphasis/code/link/table syntax (backslashes),
    one line. An underscore inside a word is left alone: it is not emphasis there."""
    text = escape(printable(" ".join(text.split())), quote=False)
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), text)


def md_table(header: list[str], rows: Iterable[list[str]], right: frozenset[int] = frozenset()) -> list[str]:
    """A GFM table; cells are escaped here, so a `|` in a value stays in its cell."""
    rule = ["---:" if i in right else "---" for i in range(len(header))]
    lines = [header, rule, *([_md(c) or " " for c in row] for row in rows)]
    return ["| " + " | ".join(line) + " |" for line in lines]


def markdown(record: Record) -> str:
    """The record as a GitHub-flavoured Markdown document."""
    names = certificate_names(record)
    out = [f"# {record.kind}: {_md(record.title)}", ""]
    out += [f"- **{label}:** {_md(text)}" for label, text in record.facts()]
    counts = record.counts()
    out += ["", "## Status", ""]
    total = [["total", str(len(record.entries))]]
    out += md_table(["Status", "Domains"], [*([s, str(n)] for s, n in counts.items()), *total], frozenset({1}))
    writes = record.writes()
    if writes:
        here = f" ({record.written_here()} in this run)" if any(e.written_by_run for e in record.entries) else ""
        out += ["", f"{len(writes)} writes{here} were answered between {at_utc(writes[0])} and {at_utc(writes[-1])}."]
    out += record.extra_markdown()
    failures = record.failures()
    out += ["", f"## Failures ({sum(map(len, failures.values()))})", ""]
    if not failures:
        out += ["None: no domain failed.", ""]
    for code, group in failures.items():
        out += [f"### {_md(code)} ({len(group)})", ""]
        out += md_table(
            ["Domain", "Account", "Region", "Error message"],
            ([e.domain, e.account_id, e.region, e.error_message] for e in group),
        )
        out += [""]
    out += ["## Domains by account and region", ""]
    if not record.entries:
        out += ["The report has no rows.", ""]
    for (account, region), group in record.places().items():
        out += [f"### Account {_md(account)}, {_md(region)} ({len(group)})", ""]
        out += md_table(
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
        out += md_table(certificate_header(record), certificate_rows(record, names))
    if record.sources:
        out += ["", "## Sources", ""]
        out += md_table(SOURCE_HEADER, source_rows(record), frozenset({2, 3}))
        if record.superseded:
            out += [
                "",
                f"{plural(len(record.superseded), 'domain')} in more than one report: the later report counts.",
                "",
            ]
            out += md_table(["Domain", "Not counted from", "Counted from"], superseded_rows(record))
    return "\n".join(out).rstrip("\n") + "\n"
