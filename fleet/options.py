"""Option values the commands share: comma lists, the failure budget, the shard (click's BadParameter on error)."""

from __future__ import annotations

from pathlib import Path

import click

from fleet.shard import Shard


def id_list(value: str | None) -> frozenset[str] | None:
    """--accounts/--exclude-accounts/--regions: a comma list, or @FILE (one or more per line, # comments)."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = ",".join(line.split("#", 1)[0] for line in path.read_text(encoding="utf-8").splitlines())
        except OSError as exc:
            raise click.BadParameter(f"{path}: cannot read: {exc.strerror}") from None
    items = frozenset(split_list(text))
    if not items:
        raise click.BadParameter(f"{value!r} names nothing")
    return items


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
