"""Which AWS errors are worth another attempt, and how long to wait before it.

The engine owns retries: botocore is configured for a single attempt (see ``credentials.client_config``)
so attempts are never multiplied, every attempt passes through our rate limiters, and every attempt
is counted in the report.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import botocore.exceptions
import tenacity

# Codes that mean "slow down" (botocore's standard mode list plus Cognito's TooManyRequestsException,
# which legacy mode misses: boto/botocore#1732).
THROTTLING_CODES = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottledException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "BandwidthLimitExceeded",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "TransactionInProgressException",
    }
)
# Transient server-side conditions. LimitExceededException is deliberately absent: Cognito uses it
# for hard limits that no retry will lift.
TRANSIENT_CODES = frozenset(
    {
        "InternalErrorException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "ConcurrentModificationException",
        "IDPCommunicationError",
    }
)


@functools.cache
def connection_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the connection failed (retryable); a TLS verification failure is not one of them."""
    import aiohttp  # on first use: aiohttp is slow to import, and `validate` never needs it

    return (
        botocore.exceptions.HTTPClientError,  # connection closed/reset, read/connect timeouts, proxy errors
        botocore.exceptions.EndpointConnectionError,
        botocore.exceptions.ConnectTimeoutError,  # not an HTTPClientError; a busy endpoint's accept queue is full
        aiohttp.ClientError,
        asyncio.TimeoutError,
        ConnectionError,
    )


@dataclass(frozen=True, slots=True)
class Failure:
    """What went wrong with a call, ready for the report."""

    code: str
    message: str
    retryable: bool
    throttled: bool = False


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code") or "Unknown")
        message = str(err.get("Message") or exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in THROTTLING_CODES or status == 429:
            return Failure(code, message, retryable=True, throttled=True)
        if code in TRANSIENT_CODES or status >= 500:
            return Failure(code, message, retryable=True)
        return Failure(code, message, retryable=False)
    if isinstance(exc, connection_errors()):
        return Failure(type(exc).__name__, str(exc) or type(exc).__name__, retryable=True)
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return Failure(type(exc).__name__, str(exc), retryable=False)
    return Failure(type(exc).__name__, str(exc), retryable=False)


def outcome_unknown(exc: BaseException) -> bool:
    """Whether a failed write may have been applied all the same: look (describe) before sending it again.

    A throttle or a refusal is an answer, and a connection that was never made (connect timeout, refused,
    TLS handshake) carried nothing; anything else that is worth retrying (5xx, ConcurrentModification, a
    connection closed or a read timed out after the request left) leaves the outcome open.
    """
    failure = classify(exc)
    return failure.retryable and not failure.throttled and not _never_sent(exc)


def never_connected(exc: BaseException) -> bool:
    """Whether a call failed because no connection could be made (refused, reset or timed out while connecting,
    DNS): it sent nothing, and it says the endpoint is unreachable rather than anything about the call."""
    return classify(exc).retryable and _never_sent(exc)


def _never_sent(exc: BaseException) -> bool:
    """Only a connection that was never made carried nothing. aiobotocore reports a connection reset after the
    request left as EndpointConnectionError too (wrapping aiohttp's ClientOSError): that one left the request."""
    import socket

    import aiohttp

    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return isinstance(exc.kwargs.get("error"), aiohttp.ClientConnectorError | socket.gaierror)
    # ConnectTimeoutError, ProxyConnectionError, SSLError (a failed handshake): nothing was sent.
    return isinstance(exc, botocore.exceptions.ConnectionError | aiohttp.ClientConnectorError)


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Exponential backoff with full jitter: sleep U(0, min(cap, base * 2**(attempt-1)))."""

    max_attempts: int = 8
    base: float = 0.5
    cap: float = 20.0

    def wait(self) -> tenacity.wait.wait_base:
        return tenacity.wait_random_exponential(multiplier=self.base, max=self.cap)


class AttemptCounter:
    """Counts the attempts of one row across its calls (the report's ``attempts``; throttles are counted by the
    run's observer, from the retries it is told of)."""

    __slots__ = ("attempts",)

    def __init__(self) -> None:
        self.attempts = 0


T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
Sleep = Callable[[float], Awaitable[None]]


async def call_with_retry(
    attempt: Callable[[], Awaitable[T]],
    policy: BackoffPolicy,
    counter: AttemptCounter,
    sleep: Sleep = asyncio.sleep,
    on_retry: Callable[[Failure, float], None] | None = None,
    guard: Guard[T] | None = None,
) -> T:
    """Run ``attempt`` until it succeeds, fails for good, or attempts run out (then re-raise).

    ``guard`` (a write's ``write_once.WriteOnce``) is asked before each attempt (a result: the earlier attempt
    took effect, nothing is sent), told of each failure, and asked once more when the attempts run out.
    """

    def retryable(exc: BaseException) -> bool:
        if guard is not None:
            guard.failed(exc)
        return classify(exc).retryable

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None and state.next_action is not None:
            exc = state.outcome.exception()
            if exc is not None:
                on_retry(classify(exc), state.next_action.sleep)

    retrying = tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(policy.max_attempts),
        wait=policy.wait(),
        retry=tenacity.retry_if_exception(retryable),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    result: T
    try:
        async for try_ in retrying:
            with try_:
                found = await guard.before_attempt() if guard is not None else None
                if found is not None:
                    result = found
                else:
                    counter.attempts += 1
                    result = await attempt()
    except Exception:
        last = await guard.exhausted() if guard is not None else None
        if last is not None:
            return last
        raise
    return result


class Guard(Protocol[T_co]):
    """What the retry loop asks of a write's rule (``write_once.WriteOnce``)."""

    async def before_attempt(self) -> T_co | None: ...

    def failed(self, exc: BaseException) -> None: ...

    async def exhausted(self) -> T_co | None: ...
