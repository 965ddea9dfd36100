"""An asyncio loop whose clock only moves when every task waits: pacing tests without sleeping."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _Selector(selectors.DefaultSelector):
    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if not ready and timeout is not None:
            # Nothing to do until the next timer: jump to it (at least a microsecond, as a real clock
            # would move, so a timer that is due "now" by float rounding still comes due).
            self._loop.now += max(timeout, 1e-6)
        return ready


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(_Selector(self))

    def time(self) -> float:
        return self.now


def run(coro: Coroutine[Any, Any, T]) -> tuple[T, float]:
    """Run ``coro`` on virtual time; return its result and the virtual seconds it took."""
    loop = VirtualTimeLoop()
    try:
        result = loop.run_until_complete(coro)
        return result, loop.now
    finally:
        loop.close()
