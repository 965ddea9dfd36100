"""Option values the commands share: comma lists, the failure budget, the shard (click's BadParameter on error)."""

from __future__ import annotations

import click

from fleet.shard import Shard


def split_list(value: str) -> list[str]:
    """'us-east-1, eu-west-1' -> ['us-east-1', 'eu-west-1'] (the comma-separated options)."""
    return [item.strip() for item in value.split(",") if item.strip()]


def budget(value: str | None) -> str | None:
    """--max-failures: a count (N) or a share of the manifest's rows (P%)."""
    if value is None:
        return None
    text = value.strip()
    try:
        number = float(text[:-1]) if text.endswith("%") else int(text)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither a count (5) nor a percentage (2%)") from None
    if number < 0 or (text.endswith("%") and number > 100):
        raise click.BadParameter(f"{value!r} is out of range")
    return text


def shard(value: str | None) -> Shard | None:
    """--shard I/N."""
    if value is None:
        return None
    try:
        return Shard.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def failure_budget(value: str | None, rows: int) -> int | None:
    """The budget in rows: N, or P% of ``rows`` rounded down."""
    if value is None:
        return None
    if value.endswith("%"):
        return int(rows * float(value[:-1]) / 100)
    return int(value)
