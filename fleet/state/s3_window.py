"""Journal PUTs off the event loop: a run's group commits are applied locally at once and sent by a pool thread;
while a PUT is on its way, the commits made meanwhile wait to share the next one (``WINDOW``).

Each group commit is applied to the local copy at once (a fast local transaction, in order) and its journal
object sent by a small pool of threads; a caller still returns only once *its* journal is in S3, so a write to
Cognito still waits for its in-flight mark to be durable there. At most ``WINDOW`` PUTs are in flight, and none
is started after one failed: that is what lets a run that takes the lock over fence a stalled writer completely
(``s3_journal.fence`` covers ``WINDOW`` keys on each side of the last one it lists).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import anyio

from fleet.state.rows import CommitBatch
from fleet.state.s3_journal import WINDOW


class JournalWindow:
    """Up to ``size`` journal PUTs in flight; after a failure, none is started (each fails with it)."""

    def __init__(self, size: int = WINDOW) -> None:
        self.size = size
        self.broken: Exception | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._slots: anyio.Semaphore | None = None

    async def slot(self) -> None:
        """Wait for room for one more PUT (the caller then ``send``s, or ``free``s the slot)."""
        if self._slots is None:
            self._slots = anyio.Semaphore(self.size)
        await self._slots.acquire()

    def free(self) -> None:
        assert self._slots is not None
        self._slots.release()

    async def drain(self) -> None:
        """Wait until no PUT is in flight (the caller holds one slot already)."""
        assert self._slots is not None
        for _ in range(self.size - 1):
            await self._slots.acquire()
        for _ in range(self.size - 1):
            self._slots.release()

    def send(self, put: Callable[[], None], landing: CommitBatch, landed: Callable[[], None]) -> None:
        """Run ``put`` in a pool thread, then ``landed()`` (in that thread) on success; then, in the event loop, set
        ``landing`` and free the slot."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.size + 1, thread_name_prefix="cognito-fleet-journal")
        # Told without waiting for the loop (call_soon_threadsafe): ``close`` may wait for the threads from the
        # loop's own thread, and a thread waiting for the loop then would never end.
        loop = asyncio.get_running_loop()

        def finish(error: Exception | None) -> None:
            landing.error = error
            landing.done.set()
            self.free()

        def work() -> None:
            error = self.broken
            if error is None:
                try:
                    put()
                    landed()  # here, not in the loop: ``close`` (in the loop's thread) sees it once the pool ends
                except Exception as exc:  # every later PUT fails with it: no gap after a failure
                    error = self.broken = exc
            # RuntimeError: the event loop has ended (the run was cancelled): nobody waits any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(finish, error)

        self._pool.submit(work)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
