"""An endpoint that cannot be reached is the run's problem, not each row's.

AWS-NOTES ("Outages"): a regional endpoint can be unreachable for seconds to minutes, every call failing to
connect at once. Retrying per row burns every row's attempts on the same outage and turns a short blip into
failed rows. Here the first call that cannot connect marks its endpoint down; from then on calls to it wait,
one probe at a time (the waiting calls take turns sending their own request, backing off between probes), and
the first answer of any kind lets them all go. Waiting spends no row's attempts: a call that never connected
sent nothing, so sending it again is safe even for a write. Past ``patience`` seconds the run stops as a
SIGTERM would (resumable): nobody is charged for an outage, and the next run goes on.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import anyio

from fleet.aws.retry import classify, connection_errors, never_connected
from fleet.aws.stop import Stop, StopRequested
from fleet.clock import Clock

T = TypeVar("T")
DEFAULT_PATIENCE = 300.0  # seconds an endpoint may stay unreachable before the run stops (resumable)


@dataclass(frozen=True, slots=True)
class OutageEvent:
    """An endpoint went down (``ended`` False) or answered again (``ended`` True, with how long it was down)."""

    endpoint: str
    since: datetime
    ended: bool
    seconds: float = 0.0
    error: str = ""
    probes: int = 0


def log_fields(event: OutageEvent) -> dict[str, object]:
    """The ``outage`` event's fields (docs/events.md), for whoever logs it (run's observer, discover)."""
    since = event.since.strftime("%Y-%m-%dT%H:%M:%SZ")
    if event.ended:
        return {
            "endpoint": event.endpoint,
            "state": "ended",
            "since": since,
            "down_s": round(event.seconds, 1),
            "probes": event.probes,
            "message": "the endpoint answers again: calls go on (no row's attempts were spent waiting)",
        }
    return {
        "endpoint": event.endpoint,
        "state": "started",
        "since": since,
        "error": event.error,
        "message": "the endpoint cannot be reached: calls to it wait (one probe at a time) until it answers",
    }


@dataclass
class _Endpoint:
    down_since: float  # monotonic
    down_at: datetime
    error: str
    changed: anyio.Event = field(default_factory=anyio.Event)
    probing: bool = False
    probes: int = 0
    next_probe: float = 0.0


class Outages:
    """Per endpoint URL: up, or down since when; one per run, shared by every account and row."""

    def __init__(
        self,
        clock: Clock,
        stop: Stop,
        patience: float = DEFAULT_PATIENCE,
        on_change: Callable[[OutageEvent], None] | None = None,
        backoff_base: float = 0.5,
        backoff_cap: float = 10.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.clock, self.stop, self.patience = clock, stop, patience
        self.on_change = on_change
        self.backoff_base, self.backoff_cap, self.jitter = backoff_base, backoff_cap, jitter
        self._down: dict[str, _Endpoint] = {}
        self.count = 0  # outages seen by this run

    def down(self) -> list[str]:
        """The endpoints that are down now."""
        return list(self._down)

    async def through(self, endpoint: str, send: Callable[[], Awaitable[T]]) -> T:
        """``send()`` once the endpoint is up (or as its probe); sent again, attempts untouched, while it fails to
        connect. Raises StopRequested when the run stops while this call waits."""
        while True:
            probe = await self._admit(endpoint)
            try:
                result = await send()
            except Exception as exc:
                if never_connected(exc):
                    self._failed(endpoint, exc, probe)
                    continue
                if probe:
                    if isinstance(exc, connection_errors()):
                        self._release(endpoint)  # sent, then cut (a kept connection): no answer, still down
                    else:
                        self._answered(endpoint)  # an answer, even an error, is the endpoint's: it is reachable
                raise
            except BaseException:
                if probe:
                    self._release(endpoint)
                raise
            self._answered(endpoint)
            return result

    async def _admit(self, endpoint: str) -> bool:
        """Wait while the endpoint is down; True when this call goes as the endpoint's probe."""
        while True:
            state = self._down.get(endpoint)
            if state is None:
                return False
            now = self.clock.monotonic()
            left = state.down_since + self.patience - now
            if left <= 0:
                self._give_up(endpoint, state)  # by the clock, not only when a probe happens to fail
            if self.stop.requested:
                raise StopRequested
            wait = state.next_probe - now
            if not state.probing and wait <= 0:
                state.probing = True
                state.probes += 1
                return True
            # Sleep until the next probe is due (or a short while, if one is out), waking early on any news, and
            # at the patience's end at the latest.
            await self._wait(state.changed, min(max(wait, 0.0) if not state.probing else 1.0, left))

    async def _wait(self, event: anyio.Event, seconds: float) -> None:
        """``event`` set or ``seconds`` passed on the run's clock, whichever comes first."""
        async with anyio.create_task_group() as tg:

            async def timer() -> None:
                await self.clock.sleep(seconds)
                tg.cancel_scope.cancel()

            tg.start_soon(timer)
            await event.wait()
            tg.cancel_scope.cancel()

    def _failed(self, endpoint: str, exc: BaseException, probe: bool) -> None:
        now = self.clock.monotonic()
        state = self._down.get(endpoint)
        if state is None:
            failure = classify(exc)
            state = self._down[endpoint] = _Endpoint(now, self.clock.now(), f"{failure.code}: {failure.message}")
            self.count += 1
            if self.on_change is not None:
                self.on_change(OutageEvent(endpoint, state.down_at, ended=False, error=state.error))
        if probe or not state.probing:
            state.probing = False
            # Full jitter, as the retry policy: probes of a long outage stay spread out and at most cap apart.
            delay = min(self.backoff_cap, self.backoff_base * 2 ** min(state.probes, 16)) * self.jitter()
            state.next_probe = now + delay
        if now - state.down_since >= self.patience:
            self._give_up(endpoint, state)
        self._notify(state)

    def _give_up(self, endpoint: str, state: _Endpoint) -> None:
        """Past the patience: the run stops as SIGTERM would (resumable)."""
        self.stop.request(
            f"endpoint {endpoint} unreachable since {state.down_at:%Y-%m-%dT%H:%M:%SZ} "
            f"(more than --outage-patience {self.patience:g}s; last error {state.error})"
        )

    def _answered(self, endpoint: str) -> None:
        state = self._down.pop(endpoint, None)
        if state is None:
            return
        if self.on_change is not None:
            seconds = self.clock.monotonic() - state.down_since
            self.on_change(
                OutageEvent(
                    endpoint, state.down_at, ended=True, seconds=seconds, error=state.error, probes=state.probes
                )
            )
        self._notify(state)

    def _release(self, endpoint: str) -> None:
        state = self._down.get(endpoint)
        if state is not None:
            state.probing = False
            self._notify(state)

    @staticmethod
    def _notify(state: _Endpoint) -> None:
        changed, state.changed = state.changed, anyio.Event()
        changed.set()
