"""Politeness: a global cap on calls in flight, and rate limits per (account, region) and per pool.

Cognito's quotas are per account and region and shared with the customer's own traffic, so the
default takes a third of the 15 req/s write quota (5 req/s) for all our calls in an account+region,
and never more than AWS's 5 req/s per user pool and operation.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
from aiolimiter import AsyncLimiter

DEFAULT_RATE_PER_ACCOUNT = 5.0
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

    def __init__(self, concurrency: int, rate_per_account: float) -> None:
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
