"""One AWS runtime per job: the clock, the stop flag, the politeness limits, the outage gate, the calls layer and
the hub, built once, in that order, and handed to whatever the job does (run's engine, plan, the prompt's pre-check,
discover). Nothing else builds them, so every call of a job (AssumeRole and the hub's GetCallerIdentity too) waits
for the same limits, the same outage gate and the same stop.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass

from fleet.aws.calls import Calls
from fleet.aws.credentials import AwsSettings, Hub
from fleet.aws.hub_check import checked_hub
from fleet.aws.limits import DEFAULT_RATE_PER_ACCOUNT, Limits
from fleet.aws.outage import DEFAULT_PATIENCE, OutageEvent, Outages
from fleet.aws.retry import BackoffPolicy
from fleet.aws.stop import Stop
from fleet.clock import Clock, SystemClock


@dataclass(frozen=True, slots=True)
class Runtime:
    """How a job calls AWS: one of each, shared by every account and row (``calls`` holds the limits, the retry
    policy and the outage gate; ``hub`` is open and its identity confirmed)."""

    clock: Clock
    stop: Stop
    calls: Calls
    hub: Hub

    @property
    def limits(self) -> Limits:
        return self.calls.limits

    @property
    def outages(self) -> Outages | None:
        return self.calls.outages


@contextlib.asynccontextmanager
async def aws_runtime(
    aws: AwsSettings,
    policy: BackoffPolicy,
    *,
    regions: Iterable[str] = (),
    concurrency: int | None = None,
    rate_per_account: float = DEFAULT_RATE_PER_ACCOUNT,
    outage_patience: float = DEFAULT_PATIENCE,
    clock: Clock | None = None,
    stop: Stop | None = None,
    on_outage: Callable[[OutageEvent], None] | None = None,
) -> AsyncIterator[Runtime]:
    """The runtime, its hub open and confirmed (HubUnavailable otherwise, before anything else is called); the
    clients of ``regions`` are created first (an endpoint in clear text is refused before any connection)."""
    clock = clock or SystemClock()
    stop = stop or Stop()
    outages = Outages(clock, stop, outage_patience, on_outage)
    calls = Calls(Limits(concurrency, rate_per_account), policy, clock, stop, outages)
    async with checked_hub(aws, calls, regions) as hub:
        yield Runtime(clock, stop, calls, hub)
