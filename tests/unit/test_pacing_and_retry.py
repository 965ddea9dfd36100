"""Pure logic: error classification, backoff, retry loop, and limiter pacing on a virtual clock."""

from __future__ import annotations

import asyncio

import botocore.exceptions
import pytest
from botocore.exceptions import ClientError

from fleet.aws.limits import Limits, make_limiter
from fleet.aws.retry import AttemptCounter, BackoffPolicy, call_with_retry, classify

from .. import virtual_time


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": f"{code}!"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "UpdateUserPoolDomain",
    )


@pytest.mark.parametrize(
    ("exc", "retryable", "throttled"),
    [
        (client_error("TooManyRequestsException"), True, True),
        (client_error("ThrottlingException"), True, True),
        (client_error("Whatever", 429), True, True),
        (client_error("InternalErrorException", 500), True, False),
        (client_error("SomethingNew", 503), True, False),
        (client_error("ConcurrentModificationException"), True, False),
        (botocore.exceptions.ConnectionClosedError(endpoint_url="http://127.0.0.1"), True, False),
        (botocore.exceptions.ReadTimeoutError(endpoint_url="http://127.0.0.1"), True, False),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1"), True, False),
        (botocore.exceptions.ConnectTimeoutError(endpoint_url="http://127.0.0.1"), True, False),
        (botocore.exceptions.SSLError(endpoint_url="http://127.0.0.1", error="bad cert"), False, False),
        (client_error("InvalidParameterException"), False, False),
        (client_error("NotAuthorizedException"), False, False),
        (client_error("ResourceNotFoundException"), False, False),
        (client_error("AccessDeniedException"), False, False),
        (client_error("LimitExceededException"), False, False),
        (ValueError("bug"), False, False),
    ],
)
def test_classification(exc: BaseException, retryable: bool, throttled: bool) -> None:
    failure = classify(exc)
    assert (failure.retryable, failure.throttled) == (retryable, throttled)


def test_full_jitter_backoff_stays_within_the_exponential_cap() -> None:
    policy = BackoffPolicy(max_attempts=10, base=0.5, cap=4.0)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def always_throttled() -> None:
        raise client_error("TooManyRequestsException")

    counter = AttemptCounter()
    with pytest.raises(ClientError):
        asyncio.run(call_with_retry(always_throttled, policy, counter, sleep))
    assert counter.attempts == 10 and len(sleeps) == 9
    for n, slept in enumerate(sleeps, start=1):
        assert 0 <= slept <= min(4.0, 0.5 * 2**n)
    assert len(set(sleeps)) > 1  # jittered, not a fixed ladder


def test_retry_recovers_and_fatal_errors_stop_at_once() -> None:
    calls: list[str] = []

    async def flaky() -> str:
        calls.append("x")
        if len(calls) < 3:
            raise client_error("InternalErrorException", 500)
        return "ok"

    async def no_sleep(_: float) -> None:
        return None

    counter = AttemptCounter()
    assert asyncio.run(call_with_retry(flaky, BackoffPolicy(), counter, no_sleep)) == "ok"
    assert counter.attempts == 3

    async def fatal() -> None:
        calls.append("fatal")
        raise client_error("InvalidParameterException")

    counter = AttemptCounter()
    with pytest.raises(ClientError):
        asyncio.run(call_with_retry(fatal, BackoffPolicy(), counter, no_sleep))
    assert counter.attempts == 1


def test_backoff_sleeps_on_the_injected_clock() -> None:
    async def throttled_twice() -> float:
        counter = AttemptCounter()
        state = {"n": 0}

        async def attempt() -> int:
            state["n"] += 1
            if state["n"] <= 2:
                raise client_error("TooManyRequestsException")
            return state["n"]

        return await call_with_retry(attempt, BackoffPolicy(base=10, cap=100), counter)

    result, elapsed = virtual_time.run(throttled_twice())
    assert result == 3
    assert 0 < elapsed <= 10 * 2 + 10 * 4  # two full-jitter sleeps, on virtual time


@pytest.mark.parametrize(("rate", "calls"), [(5.0, 50), (2.0, 21), (0.5, 5)])
def test_account_limiter_paces_calls(rate: float, calls: int) -> None:
    async def burst() -> list[float]:
        limiter = make_limiter(rate)
        loop = asyncio.get_running_loop()
        stamps = []
        for _ in range(calls):
            await limiter.acquire()
            stamps.append(loop.time())
        return stamps

    stamps, elapsed = virtual_time.run(burst())
    bucket = max(rate, 1.0)
    # After the initial bucket, calls leave at the configured rate (never faster).
    expected = (calls - bucket) / rate
    assert expected * 0.95 <= elapsed <= expected * 1.1 + 1
    for i in range(int(bucket), calls):
        assert stamps[i] - stamps[0] >= (i - bucket) / rate - 1e-6


def test_global_concurrency_caps_calls_in_flight() -> None:
    async def many() -> int:
        limits = Limits(concurrency=3, rate_per_account=1000)
        region = limits.for_region()
        in_flight, peak = 0, 0

        async def one(i: int) -> None:
            nonlocal in_flight, peak
            async with limits.call(region, f"pool{i}", "UpdateUserPoolDomain"):
                in_flight += 1
                peak = max(peak, in_flight)
                await asyncio.sleep(1)
                in_flight -= 1

        await asyncio.gather(*(one(i) for i in range(12)))
        return peak

    peak, elapsed = virtual_time.run(many())
    assert peak == 3 and elapsed == pytest.approx(4, abs=0.5)


def test_per_pool_limit_is_five_per_second_even_when_the_account_allows_more() -> None:
    async def same_pool() -> None:
        limits = Limits(concurrency=100, rate_per_account=50)
        region = limits.for_region()
        for _ in range(25):
            async with limits.call(region, "pool", "UpdateUserPoolDomain"):
                pass

    _, elapsed = virtual_time.run(same_pool())
    assert elapsed == pytest.approx((25 - 5) / 5, rel=0.1)
