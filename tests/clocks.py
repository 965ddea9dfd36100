"""A clock the test moves: the engine's waits, backoff, deadlines and drain run on it instead of real time."""

from __future__ import annotations

import heapq
import itertools
from datetime import UTC, datetime, timedelta

import anyio
import anyio.lowlevel


class ManualClock:
    """Virtual time: ``sleep`` returns only when the test advances the clock past its deadline.

    ``autojump`` (a task) moves time to the next sleeper's deadline whenever one is waiting: a wait of an hour
    takes no real time. Network calls still take real time, so tests that need the order of events to hold
    against calls in flight drive the clock by hand with ``advance``.
    """

    def __init__(self) -> None:
        self.elapsed = 0.0
        self._epoch = datetime.now(UTC)
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._order = itertools.count()
        self.slept: list[float] = []  # every sleep asked for, in order

    def monotonic(self) -> float:
        return self.elapsed

    def now(self) -> datetime:
        return self._epoch + timedelta(seconds=self.elapsed)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        woken = anyio.Event()
        heapq.heappush(self._sleepers, (self.elapsed + seconds, next(self._order), woken))
        await woken.wait()

    @property
    def sleeping(self) -> int:
        return sum(not event.is_set() for _, _, event in self._sleepers)

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has come."""
        self.elapsed += seconds
        while self._sleepers and self._sleepers[0][0] <= self.elapsed:
            heapq.heappop(self._sleepers)[2].set()

    async def autojump(self, settle: float = 0.002) -> None:
        """Forever: once a sleeper waits, jump to the earliest deadline (cancel the task to stop)."""
        while True:
            await anyio.sleep(settle)  # real time: let calls in flight make progress
            while self._sleepers and self._sleepers[0][2].is_set():
                heapq.heappop(self._sleepers)
            if self._sleepers:
                self.advance(max(0.0, self._sleepers[0][0] - self.elapsed))
