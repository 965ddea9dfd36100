"""Which AWS errors are worth another attempt, and how long to wait before it.

The engine owns retries: botocore is configured for a single attempt (see ``credentials.client_config``)
so attempts are never multiplied, every attempt passes through our rate limiters, and every attempt
is counted in the report.
"""

from __future__ import annotations

import asyncio
import copy
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
    if isinstance(exc, EndpointFailure):
        return classify(exc.cause)
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


# The shapes of a failure at an endpoint's transport or gateway (docs/outages.md), as the `outage` event names them.
REFUSED, RESET, TIMEOUT = "refused", "reset", "timeout"


def outage_shape(exc: BaseException) -> str | None:
    """What a failed call says about its endpoint: the shape of a transport or gateway failure, or None when the
    endpoint answered (success, or the service's own error document: a throttle, ``InternalErrorException``)
    or the failure is not the endpoint's (a TLS certificate refused, a proxy, bad parameters).

    One signal whatever the transport says, as Envoy's "consecutive gateway failures" (AWS-NOTES, "Outages"):
    ``refused`` (no connection: refused, reset in the TLS handshake, connect timeout, DNS), ``reset`` (the
    connection reset or closed after the request left, an EOF without a status line), ``timeout`` (no answer
    within the read timeout), ``gateway-NNN`` (a 5xx that is not the service's JSON/XML error: a load balancer's
    HTML 502/503/504, or no body at all).
    """
    if isinstance(exc, EndpointFailure):
        return exc.shape
    if isinstance(exc, botocore.exceptions.ClientError):
        return _gateway_answer(exc)
    if not isinstance(exc, connection_errors()) or not classify(exc).retryable:
        return None
    if _never_sent(exc):
        return REFUSED
    if isinstance(exc, botocore.exceptions.ReadTimeoutError | asyncio.TimeoutError):
        return TIMEOUT
    return RESET


def _gateway_answer(exc: botocore.exceptions.ClientError) -> str | None:
    """``gateway-NNN`` for a 5xx that is not the service's own error document, else None.

    botocore gives such an answer the status itself as its code ("503"): its JSON parser takes the code from the
    document's ``__type`` and its generic parser (a 5xx body starting ``<html>``, or empty) has nothing but the
    status (botocore ``parsers.ResponseParser._do_generic_error_parse``). An HTML content type is a gateway's too.
    """
    metadata = exc.response.get("ResponseMetadata", {})
    status = int(metadata.get("HTTPStatusCode") or 0)
    if status < 500:
        return None
    code = str(exc.response.get("Error", {}).get("Code") or "")
    content_type = str(metadata.get("HTTPHeaders", {}).get("content-type", "")).lower()
    if code in ("", str(status)) or content_type.startswith("text/html"):
        return f"gateway-{status}"
    return None


class EndpointFailure(Exception):
    """A call that failed at its endpoint's transport or gateway (``outage_shape``), raised by the outage gate
    (``outage.Outages.through``) around the original error (``cause``). ``in_outage()`` says whether it turned
    out to belong to an outage of the endpoint, which may be learnt after it was raised (it was among the
    failures in a row that made the endpoint down): then the retry loop charges no attempt for it."""

    def __init__(self, cause: Exception, endpoint: str, shape: str, in_outage: Callable[[], bool]) -> None:
        super().__init__(f"{endpoint}: {shape}: {cause}")
        self.cause, self.endpoint, self.shape, self.in_outage = cause, endpoint, shape, in_outage


def _never_sent(exc: BaseException) -> bool:
    """Only a connection that was never made carried nothing. aiobotocore reports a connection reset after the
    request left as EndpointConnectionError too (wrapping aiohttp's ClientOSError): that one left the request."""
    import socket

    import aiohttp

    if isinstance(exc, EndpointFailure):
        return _never_sent(exc.cause)
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

    An attempt that failed in an endpoint's outage (an ``EndpointFailure`` whose ``in_outage()``) is the
    outage's, not the call's: it does not count against ``policy.max_attempts`` nor in ``counter``, and the
    next attempt goes at once (it waits at the outage gate, not here). The error raised at the end is the
    original one, never the gate's wrapper.
    """
    ledger = _OutageLedger(policy)

    def retryable(exc: BaseException) -> bool:
        if guard is not None:
            guard.failed(exc)
        return classify(exc).retryable

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None and state.next_action is not None:
            exc = state.outcome.exception()
            if exc is not None and not ledger.of_outage(state):  # the outage has its own event
                on_retry(classify(exc), state.next_action.sleep)

    retrying = tenacity.AsyncRetrying(
        stop=ledger.stop,
        wait=ledger.wait,
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
                    try:
                        result = await attempt()
                    except EndpointFailure as failure:
                        ledger.lost.append(failure)
                        raise
        return result
    except Exception as exc:
        last = await guard.exhausted() if guard is not None else None
        if last is not None:
            return last
        if not isinstance(exc, EndpointFailure):
            raise
        cause = exc.cause
    finally:
        counter.attempts -= ledger.outages()
    raise cause  # the original error (with its own context), not the gate's wrapper


class _OutageLedger:
    """One call's failures at its endpoint's transport or gateway: those that belong to an outage are not the
    call's (no attempt charged, no backoff: the gate waits)."""

    def __init__(self, policy: BackoffPolicy) -> None:
        self.policy, self.backoff = policy, policy.wait()
        self.lost: list[EndpointFailure] = []

    def outages(self) -> int:
        """Failed attempts that belong to an outage (known now: a failure may join one after it happened)."""
        return sum(f.in_outage() for f in self.lost)

    @staticmethod
    def of_outage(state: tenacity.RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome is not None else None
        return isinstance(exc, EndpointFailure) and exc.in_outage()

    def stop(self, state: tenacity.RetryCallState) -> bool:
        return state.attempt_number - self.outages() >= self.policy.max_attempts

    def wait(self, state: tenacity.RetryCallState) -> float:
        if self.of_outage(state):
            return 0.0
        charged = copy.copy(state)  # the backoff grows with the call's own attempts only
        charged.attempt_number = max(1, state.attempt_number - self.outages())
        return float(self.backoff(charged))


class Guard(Protocol[T_co]):
    """What the retry loop asks of a write's rule (``write_once.WriteOnce``)."""

    async def before_attempt(self) -> T_co | None: ...

    def failed(self, exc: BaseException) -> None: ...

    async def exhausted(self) -> T_co | None: ...
