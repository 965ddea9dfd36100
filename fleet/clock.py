"""One clock for the run: monotonic time, wall time and sleep in one injected object.

The engine, the supervisor, waits, backoff and certificate checks all read it, so a test can move time for all
of them at once (``tests/clocks.py``) instead of sleeping; monotonic time is the event loop's own clock, the one
``sleep`` counts in, so deadlines and sleeps always agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

import anyio


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for deadlines and durations)."""

    def now(self) -> datetime:
        """Wall time, UTC (for certificate validity and report timestamps)."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the monotonic clock."""


class SystemClock:
    """The real clock: the event loop's time and anyio's sleep; wall time from the system."""

    def monotonic(self) -> float:
        return anyio.current_time()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)
