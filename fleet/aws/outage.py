"""An endpoint that fails at its transport or gateway is the run's problem, not each row's (docs/outages.md).

AWS-NOTES ("Outages"): a regional endpoint can be out for seconds to minutes, and an outage has several shapes:
connections refused or reset (before or after the request left), a load balancer's HTML 502/503/504, a black hole
answered by nothing but the client's read timeout. As Envoy's outlier detection ("consecutive gateway
failures"), they are one signal per endpoint (``retry.outage_shape``): when ``threshold`` calls to one endpoint
fail so in a row, with no answer between them, the endpoint is down. From then on calls to it wait, one probe
at a time (the waiting calls take turns sending their own request, backing off between probes), and the first
answer of any kind (a service's own error document is one) lets them all go. Every failure of those in a row,
and every one while the endpoint is down, is the outage's: the retry loop charges no attempt for it
(``retry.EndpointFailure``); a single failure stays a per-call retry. A write keeps its rule (``write_once``): one
whose answer was lost is described before anything is sent again. Past ``patience`` seconds the run stops as a
SIGTERM would (resumable): nobody is charged for an outage, and the next run goes on.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import anyio
import botocore.exceptions

from fleet.aws.retry import EndpointFailure, classify, outage_shape
from fleet.aws.stop import Stop, StopRequested
from fleet.clock import Clock

T = TypeVar("T")
DEFAULT_PATIENCE = 300.0  # seconds an endpoint may stay down before the run stops (resumable)
# Failures in a row (no answer between them) that make an endpoint down. One is a per-call retry (a kept connection
# closed as it was reused, one bad backend); Envoy's default is 5 for a proxy that sees a stream of calls, but a
# run may have a single call in flight to an endpoint: 3 is the first count that a lone reset, or two resets of
# connections that idled out together, never reaches, and it is reached within one backoff of the outage.
DEFAULT_THRESHOLD = 3


@dataclass(frozen=True, slots=True)
class OutageEvent:
    """An endpoint went down (``ended`` False) or answered again (``ended`` True, with how long it was down)."""

    endpoint: str
    since: datetime
    ended: bool
    seconds: float = 0.0
    error: str = ""
    probes: int = 0
    shape: str = ""  # the shapes seen (retry.outage_shape), in the order first seen: "reset", "refused+reset"
    lost: int = 0  # calls that failed in it (the ones in a row that revealed it included), none charged to a row


def log_fields(event: OutageEvent) -> dict[str, object]:
    """The ``outage`` event's fields (docs/events.md), for whoever logs it (run's observer, discover)."""
    since = event.since.strftime("%Y-%m-%dT%H:%M:%SZ")
    if event.ended:
        return {
            "endpoint": event.endpoint,
            "state": "ended",
            "since": since,
            "shape": event.shape,
            "down_s": round(event.seconds, 1),
            "probes": event.probes,
            "lost": event.lost,
            "message": "the endpoint answers again: calls go on (no row's attempts were spent on the outage)",
        }
    return {
        "endpoint": event.endpoint,
        "state": "started",
        "since": since,
        "shape": event.shape,
        "error": event.error,
        "message": f"calls to the endpoint fail in a row ({event.shape}): they wait (one probe at a time) until "
        "it answers",
    }


@dataclass
class _Streak:
    """Failures in a row at one endpoint, since ``began``; ``outage`` once they made it down (every failure of it is
    then free)."""

    began: float
    count: int = 0
    outage: bool = False
    shapes: list[str] = field(default_factory=list)

    def add(self, shape: str) -> None:
        self.count += 1
        if shape not in self.shapes:
            self.shapes.append(shape)

    def is_outage(self) -> bool:
        return self.outage


@dataclass
class _Endpoint:
    down_since: float  # monotonic
    down_at: datetime
    error: str
    streak: _Streak
    changed: anyio.Event = field(default_factory=anyio.Event)
    probing: bool = False
    probes: int = 0
    next_probe: float = 0.0

    def notify(self) -> None:
        """Wake the calls waiting on this endpoint (news: a probe failed or is free, or the outage ended)."""
        changed, self.changed = self.changed, anyio.Event()
        changed.set()


@dataclass
class _Sent:
    """When the current call's request left (``leaving``): its answer is the endpoint's news only if it left after
    the failures began (a request sent before them, answered now, says nothing about the endpoint now)."""

    clock: Clock
    at: float


_SENT: ContextVar[_Sent | None] = ContextVar("fleet_outage_sent", default=None)


def leaving() -> None:
    """Called as the request leaves (after the rate limits, ``calls.Calls``): the gate dates its answer from now."""
    sent = _SENT.get()
    if sent is not None:
        sent.at = sent.clock.monotonic()


class Outages:
    """Per endpoint URL: up (with its current streak of failures), or down since when; one per run, shared by
    every account and row."""

    def __init__(
        self,
        clock: Clock,
        stop: Stop,
        patience: float = DEFAULT_PATIENCE,
        on_change: Callable[[OutageEvent], None] | None = None,
        backoff_base: float = 0.5,
        backoff_cap: float = 10.0,
        jitter: Callable[[], float] = random.random,
        threshold: int = DEFAULT_THRESHOLD,
    ) -> None:
        self.clock, self.stop, self.patience = clock, stop, patience
        self.on_change = on_change
        self.backoff_base, self.backoff_cap, self.jitter = backoff_base, backoff_cap, jitter
        self.threshold = max(1, threshold)
        self._down: dict[str, _Endpoint] = {}
        self._streaks: dict[str, _Streak] = {}
        self.count = 0  # outages seen by this run

    def down(self) -> list[str]:
        """The endpoints that are down now."""
        return list(self._down)

    async def through(self, endpoint: str, send: Callable[[], Awaitable[T]]) -> T:
        """``send()`` once the endpoint is up (or as its probe). A failure at the endpoint's transport or gateway
        is raised as ``EndpointFailure`` (for the retry loop, which sends again); any other error as it is.
        Raises StopRequested when the run stops while this call waits."""
        probe = await self._admit(endpoint)
        sent = _Sent(self.clock, self.clock.monotonic())
        token = _SENT.set(sent)
        try:
            result = await send()
        except Exception as exc:
            shape = outage_shape(exc)
            if shape is not None:
                streak = self._failed(endpoint, exc, shape, probe)
                raise EndpointFailure(exc, endpoint, shape, streak.is_outage) from exc
            if isinstance(exc, botocore.exceptions.ClientError):
                self._answered(endpoint, sent.at)  # an answer, even an error, is the endpoint's
            elif probe:
                self._release(endpoint)  # not about the endpoint (stopped before sending, bad parameters)
            raise
        except BaseException:
            if probe:
                self._release(endpoint)
            raise
        finally:
            _SENT.reset(token)
        self._answered(endpoint, sent.at)
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
            await _wait(self.clock, state.changed, min(max(wait, 0.0) if not state.probing else 1.0, left))

    def _failed(self, endpoint: str, exc: BaseException, shape: str, probe: bool) -> _Streak:
        """Count a failure of ``shape``; the endpoint goes down at the threshold. Returns the failure's streak."""
        now = self.clock.monotonic()
        state = self._down.get(endpoint)
        if state is None:
            streak = self._streaks.setdefault(endpoint, _Streak(now))
            streak.add(shape)
            if streak.count < self.threshold:
                return streak  # a per-call retry, unless more failures in a row follow
            del self._streaks[endpoint]
            streak.outage = True
            failure = classify(exc)
            error = f"{failure.code}: {failure.message}"
            state = self._down[endpoint] = _Endpoint(now, self.clock.now(), error, streak)
            self.count += 1
            if self.on_change is not None:
                event = OutageEvent(endpoint, state.down_at, ended=False, error=error, shape="+".join(streak.shapes))
                self.on_change(event)
        else:
            state.streak.add(shape)
        if probe or not state.probing:
            state.probing = False
            # Full jitter, as the retry policy: probes of a long outage stay spread out and at most cap apart.
            delay = min(self.backoff_cap, self.backoff_base * 2 ** min(state.probes, 16)) * self.jitter()
            state.next_probe = now + delay
        if now - state.down_since >= self.patience:
            self._give_up(endpoint, state)
        state.notify()
        return state.streak

    def _give_up(self, endpoint: str, state: _Endpoint) -> None:
        """Past the patience: the run stops as SIGTERM would (resumable)."""
        self.stop.request(
            f"endpoint {endpoint} unreachable since {state.down_at:%Y-%m-%dT%H:%M:%SZ} "
            f"(more than --outage-patience {self.patience:g}s; {'+'.join(state.streak.shapes)}; "
            f"last error {state.error})"
        )

    def _answered(self, endpoint: str, sent_at: float) -> None:
        """An answer to a request that left at ``sent_at`` breaks the row of failures and ends an outage, unless it
        left before they began (answered late, as calls in flight when an outage starts are)."""
        state = self._down.get(endpoint)
        streak = state.streak if state is not None else self._streaks.get(endpoint)
        if streak is not None and sent_at < streak.began:
            return
        self._streaks.pop(endpoint, None)
        state = self._down.pop(endpoint, None)
        if state is None:
            return
        if self.on_change is not None:
            streak = state.streak
            seconds = self.clock.monotonic() - state.down_since
            self.on_change(
                OutageEvent(
                    endpoint,
                    state.down_at,
                    ended=True,
                    seconds=seconds,
                    error=state.error,
                    probes=state.probes,
                    shape="+".join(streak.shapes),
                    lost=streak.count,
                )
            )
        state.notify()

    def _release(self, endpoint: str) -> None:
        state = self._down.get(endpoint)
        if state is not None:
            state.probing = False
            state.notify()


async def _wait(clock: Clock, event: anyio.Event, seconds: float) -> None:
    """``event`` set or ``seconds`` passed on the run's clock, whichever comes first."""
    async with anyio.create_task_group() as tg:

        async def timer() -> None:
            await clock.sleep(seconds)
            tg.cancel_scope.cancel()

        tg.start_soon(timer)
        await event.wait()
        tg.cancel_scope.cancel()
