"""Politeness: rate limits per (account, region) and per pool, and a ceiling on calls in flight.

Cognito's quotas are per account and region and shared with the customer's own traffic, so the
default takes a third of the 15 req/s write quota (5 req/s) for all our calls in an account+region,
and never more than AWS's 5 req/s per user pool and operation.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator

import anyio
from aiolimiter import AsyncLimiter

DEFAULT_RATE_PER_ACCOUNT = 5.0
_FD_RESERVE = 256  # descriptors kept for everything but sockets: SQLite, logs, the CA bundle, threads


@functools.cache
def call_ceiling(explicit: int | None = None) -> int:
    """Calls in flight at once over the whole run (and sockets per connection pool).

    No fixed cap by default: the politeness limiters (per account+region and pool) already bound the rate, and a
    latency-bound run needs rate x latency calls in flight (Little's law), more than any fixed number allows as
    latency grows. What remains to respect is the process's file-descriptor limit: the soft limit is raised to
    the hard one, and the ceiling is that, less a reserve. ``explicit`` (--concurrency) is a ceiling of its own.
    """
    if explicit is not None:
        return explicit
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            target = 65536 if hard == resource.RLIM_INFINITY else hard
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    except (ImportError, ValueError, OSError):  # not a POSIX system, or not allowed: keep the soft limit
        soft = 1024
    return max(64, soft - _FD_RESERVE)


POOL_RATE = 5.0  # AWS: 5 req/s per user pool per operation (not adjustable)


def make_limiter(rate_per_second: float) -> AsyncLimiter:
    """A leaky bucket of ``rate_per_second``; below 1/s the bucket holds one call."""
    if rate_per_second >= 1:
        return AsyncLimiter(rate_per_second, 1.0)
    return AsyncLimiter(1, 1.0 / rate_per_second)


class RegionLimits:
    """Limits of one account+region: one bucket for the account, one per pool and operation."""

    def __init__(self, rate_per_second: float) -> None:
        self.account = make_limiter(rate_per_second)
        self._pool_rate = min(POOL_RATE, rate_per_second)
        self._pools: dict[tuple[str, str], AsyncLimiter] = {}

    def pool(self, pool_id: str, operation: str) -> AsyncLimiter:
        key = (pool_id, operation)
        limiter = self._pools.get(key)
        if limiter is None:
            limiter = self._pools[key] = make_limiter(self._pool_rate)
        return limiter


class Limits:
    """Shared by the whole run; per-account parts live only while that account is being worked on."""

    def __init__(self, concurrency: int | None, rate_per_account: float) -> None:
        concurrency = call_ceiling(concurrency)
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if rate_per_account <= 0:
            raise ValueError("rate per account must be positive")
        self.in_flight = anyio.CapacityLimiter(concurrency)
        self.rate_per_account = rate_per_account

    def for_region(self) -> RegionLimits:
        return RegionLimits(self.rate_per_account)

    @contextlib.asynccontextmanager
    async def call(self, region: RegionLimits, pool_id: str, operation: str) -> AsyncIterator[None]:
        """Wait for the pool's and the account's rate, then for a free slot, and hold it for the call."""
        await region.pool(pool_id, operation).acquire()
        await region.account.acquire()
        async with self.in_flight:
            yield
