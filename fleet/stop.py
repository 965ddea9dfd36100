"""Stopping politely: a flag the engine checks before it starts a row or sends a write."""

from __future__ import annotations


class Stop:
    """Set on SIGTERM/SIGINT or at the runtime deadline: no new row starts, no new write is sent."""

    def __init__(self) -> None:
        self.reason: str | None = None

    @property
    def requested(self) -> bool:
        return self.reason is not None

    def request(self, reason: str) -> None:
        self.reason = self.reason or reason
