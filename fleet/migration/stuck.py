"""A written domain that does not settle raises the alarm: past ``--stuck-after`` since the tool's write (the
in-flight mark in the state), a domain still waiting for something fails ``StuckUpdating`` with its age, so that
cron's exit code says so. Cognito promises distribution within an hour ("requires up to 1 hour to distribute your
new certificate", the Cognito developer guide, custom domains); the default allows twice that.

Pure functions of times: ``waiting_for`` names what the domain still waits for ("still UPDATING"; an edge check
adds "the edge not yet serving the target"), so every such wait shares one limit and one message.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fleet.errors import RowFailed

DEFAULT_STUCK_AFTER = 2 * 3600.0  # seconds
STUCK = "StuckUpdating"


def parse_stamp(value: str) -> datetime:
    """A time as the state stores it (ISO 8601, ``Z``)."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def age(written_at: str | None, now: datetime) -> timedelta | None:
    """How long ago the write was marked; None when the state has no write time (a 0.1 checkpoint)."""
    return None if written_at is None else max(timedelta(0), now - parse_stamp(written_at))


def human(span: timedelta) -> str:
    """2h05m, 12m30s, 45s."""
    seconds = int(span.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def check(domain: str, waiting_for: str, written_at: str | None, now: datetime, limit: float) -> None:
    """RowFailed(StuckUpdating) when ``domain`` has been ``waiting_for`` longer than ``limit`` seconds since its
    write."""
    waited = age(written_at, now)
    if waited is not None and waited.total_seconds() > limit:
        raise RowFailed(
            STUCK,
            f"{domain!r} {waiting_for} {human(waited)} after the write at {written_at} "
            f"(--stuck-after {human(timedelta(seconds=limit))})",
        )
