"""Option values the commands share: comma lists, the failure budget, the shard, the external id, durations
(click's BadParameter on error)."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
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


EXTERNAL_ID_ENV = "COGNITO_FLEET_EXTERNAL_ID"


@dataclass(frozen=True, slots=True)
class SecretFile:
    """--external-id-file: where the external id was read, whether others may read it too, and the id itself."""

    path: Path
    mode: int  # its permission bits, when read
    text: str = field(repr=False)

    @property
    def readable_by_others(self) -> bool:
        return bool(self.mode & 0o044)


def secret_file(value: Path | None) -> SecretFile | None:
    """--external-id-file: the file's first line (a trailing newline is not part of it); its content never goes
    into a message."""
    if value is None:
        return None
    try:
        text = value.read_text(encoding="utf-8").strip()
        mode = stat.S_IMODE(os.stat(value).st_mode)  # of the file itself (a Kubernetes secret is a symlink to it)
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or type(exc).__name__
        raise click.BadParameter(f"{value}: cannot read: {why}") from None
    if not text or "\n" in text:
        raise click.BadParameter(f"{value}: must hold the external id on one line ({'empty' if not text else 'lines'})")
    return SecretFile(value, mode, text)


def external_id(given: str | None, from_file: SecretFile | None, environ: Mapping[str, str]) -> str | None:
    """The ExternalId: --external-id, else --external-id-file, else $COGNITO_FLEET_EXTERNAL_ID (the last two keep
    it out of `ps` and the crontab). A file that group or others may read is used, with a warning (once the logs
    are set up: this runs when the settings are made)."""
    if given and from_file:
        raise click.UsageError("give one of --external-id and --external-id-file")
    if from_file is not None and from_file.readable_by_others:
        from fleet.events import get_logger

        get_logger().warning(
            "external_id_file_readable",
            path=str(from_file.path),
            mode=f"{from_file.mode:04o}",
            message=f"group or others may read the external id in {from_file.path}: chmod 600 {from_file.path}",
        )
    return given or (from_file.text if from_file else None) or environ.get(EXTERNAL_ID_ENV) or None


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")


def duration(value: str | float | None) -> float | None:
    """--stuck-after, --plan-max-age: seconds, or days/hours/minutes/seconds (7200, 90m, 2h, 1h30m, 7d)."""
    if value is None or isinstance(value, float | int):
        return None if value is None else float(value)
    match = _DURATION.fullmatch(value.strip().lower())
    if not value.strip() or match is None:
        raise click.BadParameter(f"{value!r} is not a duration (7200, 90m, 2h, 1h30m, 7d)")
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = days * 86400 + hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise click.BadParameter(f"{value!r} must be more than 0")
    return total
