"""Every AWS call of a run goes through ``Calls``: the politeness limits, the retry policy, the row's attempt
count, the stop flag, and for a write the rule that it takes effect once (``write_once``). Listings page through
the same path, so an account's credentials stay bound (views of shared clients have no paginators), and
``Once`` gives each answer that many rows share (a certificate, an account's listing) one call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import anyio

from fleet.aws.limits import Limits, RegionLimits
from fleet.aws.outage import Outages, leaving
from fleet.aws.retry import AttemptCounter, BackoffPolicy, Failure, call_with_retry
from fleet.aws.stop import Stop, StopRequested
from fleet.aws.write_once import WriteOnce
from fleet.clock import Clock, SystemClock

OnRetry = Callable[[Failure, float], None]


def snake(operation: str) -> str:
    """UpdateUserPoolDomain -> update_user_pool_domain (the client's method name)."""
    return "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")


@dataclass(frozen=True, slots=True)
class Calls:
    """How a run calls AWS; one per run, shared by every account and row."""

    limits: Limits
    policy: BackoffPolicy
    clock: Clock = field(default_factory=SystemClock)
    stop: Stop = field(default_factory=Stop)
    outages: Outages | None = None  # None: a call that cannot connect is retried like any other error

    async def call(
        self,
        client: Any,
        operation: str,
        limits: RegionLimits | None,
        limit_key: str,
        counter: AttemptCounter | None = None,
        *,
        on_retry: OnRetry | None = None,
        write: WriteOnce[Any] | None = None,
        despite_stop: bool = False,
        **kwargs: Any,
    ) -> Any:
        """One operation, retried under the policy; every attempt waits for the limits.

        Once the run is stopping, a call that has not been sent yet raises StopRequested instead (unless
        ``despite_stop``: a look that belongs to a write already sent). A call that was sent finishes (with its
        retries): the run drains. A ``write`` follows its rule (``write_once``): its in-flight mark is made once,
        after the limits let the call go and just before it leaves. ``limits`` None: the hub's own STS calls
        (GetCallerIdentity, AssumeRole), which take no politeness limit and no in-flight slot: a credential refresh
        runs inside a call that already holds one, and waiting for another could wait forever.
        """
        method: Callable[..., Awaitable[Any]] = getattr(client, snake(operation))
        sent = False

        async def send() -> Any:
            nonlocal sent
            limited = self.limits.call(limits, limit_key, operation) if limits is not None else _UNLIMITED
            async with limited:
                if not sent:
                    if self.stop.requested and not despite_stop:
                        raise StopRequested
                    if write is not None:
                        await write.mark()
                    sent = True
                leaving()  # the outage gate dates this attempt's answer from now
                return await method(**kwargs)

        async def attempt() -> Any:
            if self.outages is None:
                return await send()
            # Waiting out an endpoint's outage is outside the limits (no slot held) and spends no attempt.
            return await self.outages.through(_endpoint_of(client), send)

        return await call_with_retry(
            attempt, self.policy, counter or AttemptCounter(), self.clock.sleep, on_retry, write
        )

    async def pages(
        self, client: Any, operation: str, limits: RegionLimits, limit_key: str, items: str, **kwargs: Any
    ) -> list[Any]:
        """Every item of a listing that pages with NextToken, each page one ``call``."""
        found: list[Any] = []
        token: str | None = None
        while True:
            request: dict[str, Any] = {**kwargs, "NextToken": token} if token else kwargs
            page = await self.call(client, operation, limits, limit_key, **request)
            found += page.get(items) or []
            token = page.get("NextToken")
            if not token:
                return found


_UNLIMITED = contextlib.nullcontext()


def _endpoint_of(client: Any) -> str:
    """The URL the client sends to (after every configuration source): an outage is that endpoint's."""
    return str(getattr(getattr(client, "meta", None), "endpoint_url", "") or "")


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass
class _Entry(Generic[V]):
    done: anyio.Event
    value: V | None = None
    ok: bool = False
    error: Exception | None = None


class Once(Generic[K, V]):
    """Each key's value computed once; callers that ask meanwhile wait for that one answer (or its error).

    A computation cut short (the run stopping, a cancellation) is not an answer: the next caller computes again.
    """

    def __init__(self) -> None:
        self._entries: dict[K, _Entry[V]] = {}

    async def get(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        while True:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(anyio.Event())
                try:
                    entry.value, entry.ok = await compute(), True
                except StopRequested:
                    del self._entries[key]
                    raise
                except Exception as exc:
                    entry.error = exc
                except BaseException:
                    del self._entries[key]
                    raise
                finally:
                    entry.done.set()
            else:
                await entry.done.wait()
                if not entry.ok and entry.error is None:
                    continue  # its computation was cut short: ask again
            if entry.error is not None:
                raise entry.error
            return entry.value  # type: ignore[return-value]  # ok is True: value was set

    def __len__(self) -> int:
        return len(self._entries)
