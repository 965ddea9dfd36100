"""`--help` in sections: the options a run needs every day first, then tuning, AWS and the network, output, safety.

click lists a command's options in one flat list (``run`` has 35); ``SectionedCommand`` writes the same help
records (click's own, so each option reads as before) under the section this table gives its first name. An option
missing from the table is listed under ``Other options`` (``tests/unit/test_help_sections.py`` fails on it).
"""

from __future__ import annotations

import click

SECTIONS: dict[str, tuple[str, ...]] = {
    "Everyday options": (
        "--config",
        "--checkpoint",
        "--wait",
        "--plan",
        "--plan-sha256",
        "--yes",
        "--out",
        "--accounts",
        "--exclude-accounts",
        "--regions",
        "--organization",
        "--ou",
        "--exclude",
        "--map",
        "--auto",
        "--issuer",
        "--imported",
        "--expiring-within",
        "--plan-only",
        "--check",
    ),
    "Tuning (pace, limits, waiting, stopping)": (
        "--concurrency",
        "--account-concurrency",
        "--rate-per-account",
        "--max-attempts",
        "--outage-patience",
        "--wait-timeout",
        "--wait-interval",
        "--stuck-after",
        "--drain-seconds",
        "--max-runtime",
        "--shard",
    ),
    "AWS and network": (
        "--profile",
        "--role-name",
        "--external-id",
        "--external-id-file",
        "--session-duration",
        "--endpoint-url",
        "--insecure-endpoint",
        "--edge-check",
        "--edge-address",
        "--state-region",
        "--lock-lease",
    ),
    "Output, records and logs": (
        "--report",
        "--inventory",
        "--change-ref",
        "--metrics-file",
        "--pushgateway",
        "--notify",
        "--progress",
        "--log-format",
        "--log-level",
    ),
    "Safety": (
        "--min-validity-days",
        "--canary",
        "--max-failures",
        "--plan-max-age",
        "--allowed-accounts",
        "--trust-state-dir",
    ),
}
OTHER = "Other options"
HELP = "--help"  # click's own: the last line of the last section, wherever the table puts the rest
_SECTION_OF = {name: title for title, names in SECTIONS.items() for name in names}


def section_of(param: click.Parameter) -> str:
    """The section of an option, by its first long name (``--progress/--no-progress``: ``--progress``)."""
    if HELP in param.opts:
        return HELP
    return next((_SECTION_OF[o] for o in param.opts if o in _SECTION_OF), OTHER)


class SectionedCommand(click.Command):
    """A command whose ``--help`` lists its options in the sections above, in the table's order; within a section,
    in the order the command declares them."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        records: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx) if isinstance(param, click.Option) else None  # as click: no arguments
            if record is not None:
                records.setdefault(section_of(param), []).append(record)
        last = [title for title in (*SECTIONS, OTHER) if title in records][-1:]
        for title in (*SECTIONS, OTHER):
            if title in records:
                with formatter.section(title):
                    formatter.write_dl(records[title] + (records.get(HELP, []) if [title] == last else []))
