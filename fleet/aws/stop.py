"""Stopping politely: a flag the engine checks before it starts a row or sends a call."""

from __future__ import annotations


class Stop:
    """Set on SIGTERM/SIGINT or at the runtime deadline (resumable), or when the run must not go on
    (failure budget exceeded, canary failed): no new row starts, no new call is sent."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.aborted = False  # True: stopped because something went wrong, not because time ran out

    @property
    def requested(self) -> bool:
        return self.reason is not None

    def request(self, reason: str, abort: bool = False) -> None:
        if self.reason is None:
            self.reason, self.aborted = reason, abort


class StopRequested(Exception):
    """Raised instead of sending a call once the run is stopping; the row is left for the next run."""
