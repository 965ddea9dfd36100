"""How the records show counts, times and certificates: shared by the change record, its renderers, the plan
record and the plan's terminal table."""

from __future__ import annotations

import collections
import re
from collections.abc import Iterable
from datetime import datetime, timedelta

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


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def at_utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def duration(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s"


def by_name(item: tuple[str, str]) -> tuple[str, str]:
    return item[1], item[0]
