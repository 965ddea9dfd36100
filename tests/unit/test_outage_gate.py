"""The outage gate (fleet/aws/outage.py, docs/outages.md) on virtual time: what a failure says about its endpoint
(its shape), the threshold (3 in a row), one probe at a time, the patience, no attempt charged for an outage, a
write lost in one looked at before it is sent again; and what the operator sees. Against the sandbox, each shape
mid-run: tests/e2e/test_outage.py."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import aiohttp
import anyio
import botocore.exceptions
import botocore.parsers
import pytest
from botocore.exceptions import ClientError
from rich.console import Console

from fleet.aws.calls import Calls
from fleet.aws.limits import Limits
from fleet.aws.outage import OutageEvent, Outages, log_fields
from fleet.aws.retry import AttemptCounter, BackoffPolicy, call_with_retry, outage_shape
from fleet.aws.stop import Stop, StopRequested
from fleet.aws.write_once import WriteOnce
from fleet.cli.progress import ProgressBar
from fleet.clock import SystemClock
from fleet.sandbox.faults import ALB_503_BODY

from .. import virtual_time

URL = "https://cognito-idp.example"


# ---- what a failure says about its endpoint --------------------------------------------------------------------
def _parsed(protocol: str, status: int, content_type: str, body: bytes) -> ClientError:
    """The error botocore (the pinned one) makes of an HTTP answer, as it would for a call."""
    parsed = botocore.parsers.create_parser(protocol).parse(
        {"status_code": status, "headers": {"content-type": content_type}, "body": body}, None
    )
    return ClientError(parsed, "DescribeUserPoolDomain")  # type: ignore[arg-type]


def _reset_after_sending() -> botocore.exceptions.EndpointConnectionError:
    # aiobotocore's wrapping of a reset on a connection that carried the request (ClientOSError, not a connector's).
    return botocore.exceptions.EndpointConnectionError(endpoint_url=URL, error=aiohttp.ClientOSError(104, "reset"))


def _refused() -> botocore.exceptions.EndpointConnectionError:
    key = aiohttp.client_reqrep.ConnectionKey("h", 443, True, True, None, None, None)
    return botocore.exceptions.EndpointConnectionError(
        endpoint_url=URL, error=aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "refused"))
    )


SERVICE_500 = b'{"__type": "InternalErrorException", "message": "Internal error"}'
STS_503 = b"<ErrorResponse><Error><Code>ServiceUnavailable</Code><Message>x</Message></Error></ErrorResponse>"


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda: botocore.exceptions.ConnectTimeoutError(endpoint_url=URL), "refused"),
        (_refused, "refused"),
        (_reset_after_sending, "reset"),
        (lambda: botocore.exceptions.ConnectionClosedError(endpoint_url=URL), "reset"),  # EOF, no status line
        (lambda: botocore.exceptions.ReadTimeoutError(endpoint_url=URL), "timeout"),
        (lambda: _parsed("json", 503, "text/html", ALB_503_BODY), "gateway-503"),  # an ALB before Cognito
        (lambda: _parsed("query", 503, "text/html", ALB_503_BODY), "gateway-503"),  # ... before STS
        (lambda: _parsed("json", 502, "text/html", b"<!DOCTYPE html><p>Bad gateway</p>"), "gateway-502"),
        (lambda: _parsed("json", 504, "text/plain", b""), "gateway-504"),
        # The service's own answers: not the transport's, whatever their status.
        (lambda: _parsed("json", 500, "application/x-amz-json-1.1", SERVICE_500), None),
        (lambda: _parsed("query", 503, "text/xml", STS_503), None),
        (lambda: _parsed("json", 400, "application/x-amz-json-1.1", b'{"__type": "TooManyRequestsException"}'), None),
        (lambda: _parsed("json", 403, "text/html", b"<html>denied</html>"), None),  # a 4xx page: not an outage
        (lambda: botocore.exceptions.SSLError(endpoint_url=URL, error="certificate verify failed"), None),
    ],
)
def test_the_shape_of_a_failure(make: Callable[[], Exception], shape: str | None) -> None:
    assert outage_shape(make()) == shape


# ---- the gate's logic, on virtual time ---------------------------------------------------------------------------
POLICY = BackoffPolicy(max_attempts=3, base=0.5, cap=2.0)


def _gate(patience: float, events: list[OutageEvent]) -> tuple[Outages, Stop]:
    stop = Stop()
    return Outages(SystemClock(), stop, patience, events.append, jitter=lambda: 1.0), stop


async def _call(
    gate: Outages, send: Callable[[], Any], counter: AttemptCounter | None = None, policy: BackoffPolicy = POLICY
) -> Any:
    """One call as the calls layer makes it: the retry loop around the gate."""
    return await call_with_retry(lambda: gate.through(URL, send), policy, counter or AttemptCounter(), anyio.sleep)


class Script:
    """Each send's answer in turn (an exception is raised); the last one repeats."""

    def __init__(self, *answers: Any) -> None:
        self.answers, self.sends = list(answers), 0

    async def send(self) -> Any:
        self.sends += 1
        await anyio.sleep(0.05)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer


def _reset() -> Exception:
    return botocore.exceptions.ConnectionClosedError(endpoint_url=URL)


def _throttle() -> ClientError:
    body = b'{"__type": "TooManyRequestsException", "message": "slow down"}'
    return _parsed("json", 400, "application/x-amz-json-1.1", body)


def test_a_single_reset_is_the_call_s_own_retry_not_an_outage() -> None:
    events: list[OutageEvent] = []
    gate, _ = _gate(300.0, events)
    script, counter = Script(_reset(), _reset(), "answer"), AttemptCounter()
    result, _ = virtual_time.run(_call(gate, script.send, counter))
    assert result == "answer" and script.sends == 3
    assert counter.attempts == 3  # two failures below the threshold: charged to the call, as any transient error
    assert events == [] and gate.down() == []


def test_an_answer_between_failures_breaks_the_row() -> None:
    # reset, a throttle (the service's own answer), reset, reset: never three in a row, so no outage.
    events: list[OutageEvent] = []
    gate, _ = _gate(300.0, events)
    script, counter = Script(_reset(), _throttle(), _reset(), _reset(), "answer"), AttemptCounter()
    result, _ = virtual_time.run(_call(gate, script.send, counter, BackoffPolicy(max_attempts=5, base=0.5, cap=2.0)))
    assert result == "answer" and counter.attempts == 5  # every failure the call's own
    assert events == []


def test_a_late_answer_to_a_request_sent_before_the_failures_does_not_break_the_row() -> None:
    # A call in flight when the outage begins is answered after its first failures: it left before them, so it says
    # nothing about the endpoint now. The row goes on to 3, the endpoint is down, and no failure is charged.
    events: list[OutageEvent] = []
    gate, _ = _gate(300.0, events)
    counter = AttemptCounter()

    async def slow() -> str:
        await anyio.sleep(0.8)  # sent at 0, answered at 0.8: between the failing call's first and third failure
        return "late"

    async def failing() -> str:
        await anyio.sleep(0.05)
        if anyio.current_time() < 10.0:
            raise _reset()
        return "answer"

    async def main() -> list[str]:
        results: list[str] = []
        async with anyio.create_task_group() as tg:

            async def first() -> None:
                results.append(await _call(gate, slow))

            async def second() -> None:
                await anyio.sleep(0.5)
                results.append(await _call(gate, failing, counter))

            tg.start_soon(first)
            tg.start_soon(second)
        return results

    results, _ = virtual_time.run(main())
    assert sorted(results) == ["answer", "late"] and counter.attempts == 1
    assert [(e.ended, e.shape) for e in events] == [(False, "reset"), (True, "reset")]


def test_failures_in_a_row_make_the_endpoint_down_and_none_of_them_is_charged() -> None:
    # Three calls cut at once (the outage's start), then every send fails until the endpoint heals at 20 s.
    events: list[OutageEvent] = []
    gate, _ = _gate(300.0, events)
    counters = [AttemptCounter() for _ in range(3)]

    async def send() -> str:
        await anyio.sleep(0.05)
        if anyio.current_time() < 20.0:
            raise _reset()
        return "answer"

    async def main() -> list[str]:
        results: list[str] = []
        async with anyio.create_task_group() as tg:
            for counter in counters:

                async def caller(counter: AttemptCounter = counter) -> None:
                    results.append(await _call(gate, send, counter))

                tg.start_soon(caller)
        return results

    results, elapsed = virtual_time.run(main())
    assert results == ["answer"] * 3 and 20.0 <= elapsed < 31.0
    # max_attempts is 3: the calls went on only because no failure was charged, the first ones included.
    assert [c.attempts for c in counters] == [1, 1, 1]
    assert [(e.ended, e.shape) for e in events] == [(False, "reset"), (True, "reset")]
    assert events[1].lost >= 3 and events[1].probes >= 2


class Endpoint:
    """A fake endpoint that refuses connections until ``heals_at`` (virtual seconds), counting what is sent."""

    def __init__(self, heals_at: float) -> None:
        self.heals_at, self.sends, self.in_flight, self.most_in_flight = heals_at, 0, 0, 0
        self.refused = 0

    async def send(self) -> str:
        self.sends += 1
        self.in_flight += 1
        if anyio.current_time() >= 1.0:  # once the first refusals are known (callers start over 5 s)
            self.most_in_flight = max(
                self.most_in_flight, self.in_flight if anyio.current_time() < self.heals_at else 0
            )
        try:
            await anyio.sleep(0.05)  # a connect attempt takes a while
            if anyio.current_time() < self.heals_at:
                self.refused += 1
                raise botocore.exceptions.ConnectTimeoutError(endpoint_url=URL)
            return "answer"
        finally:
            self.in_flight -= 1


def test_callers_wait_out_an_outage_one_probe_at_a_time() -> None:
    endpoint, events = Endpoint(heals_at=30.0), list[OutageEvent]()
    gate, stop = _gate(300.0, events)
    results: list[str] = []

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for i in range(50):

                async def caller(delay: float = i * 0.1) -> None:
                    await anyio.sleep(delay)
                    results.append(await _call(gate, endpoint.send))

                tg.start_soon(caller)

    _, elapsed = virtual_time.run(main())
    assert results == ["answer"] * 50 and not stop.requested
    assert 30.0 <= elapsed < 30.0 + 10.5  # back within one probe interval (capped at 10 s) of the endpoint healing
    # Once the outage is known, one probe at a time.
    assert endpoint.most_in_flight == 1
    assert endpoint.refused < 15, endpoint.refused  # probes backed off: not 50 callers x attempts
    assert [e.ended for e in events] == [False, True] and 29 < events[1].seconds < 41
    assert events[0].shape == "refused"


def test_an_outage_longer_than_the_patience_stops_the_run() -> None:
    endpoint, events = Endpoint(heals_at=1000.0), list[OutageEvent]()
    gate, stop = _gate(20.0, events)
    stopped: list[str] = []

    async def main() -> None:
        async def caller() -> None:
            try:
                await _call(gate, endpoint.send)
            except StopRequested:
                stopped.append("stopped")

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(caller)

    _, elapsed = virtual_time.run(main())
    assert stopped == ["stopped"] * 10
    assert stop.reason is not None and f"{URL} unreachable since" in stop.reason and "refused" in stop.reason
    assert not stop.aborted  # resumable: exit 75, not a failure
    assert 20.0 <= elapsed < 35.0
    assert [e.ended for e in events] == [False]


def test_an_error_answer_ends_an_outage_and_reaches_the_caller() -> None:
    # A throttle or a refusal is an answer: the endpoint is reachable, and the caller's own retry policy decides.
    events: list[OutageEvent] = []
    gate, _stop = _gate(300.0, events)
    gateway = _parsed("json", 503, "text/html", ALB_503_BODY)
    denied = _parsed("json", 400, "application/x-amz-json-1.1", b'{"__type": "NotAuthorizedException"}')
    script = Script(gateway, gateway, gateway, denied)

    async def main() -> str:
        try:
            return str(await _call(gate, script.send))
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])

    code, _ = virtual_time.run(main())
    assert code == "NotAuthorizedException" and script.sends == 4
    assert [(e.ended, e.shape) for e in events] == [(False, "gateway-503"), (True, "gateway-503")]
    assert gate.down() == []


def test_the_patience_is_kept_by_the_clock_even_between_far_apart_probes() -> None:
    # Probes 20 s apart, patience 5 s: the run stops at 5 s, not at the next probe (which could even succeed and
    # hide that the outage outlasted the patience).
    endpoint = Endpoint(heals_at=1000.0)
    stop = Stop()
    gate = Outages(SystemClock(), stop, 5.0, None, backoff_base=10.0, backoff_cap=60.0, jitter=lambda: 1.0)
    stopped: list[float] = []

    async def main() -> None:
        async def caller() -> None:
            try:
                await _call(gate, endpoint.send)
            except StopRequested:
                stopped.append(anyio.current_time())

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(caller)

    virtual_time.run(main())
    assert len(stopped) == 3 and max(stopped) < 5.5, stopped
    assert stop.reason is not None and "--outage-patience 5s" in stop.reason


def test_a_write_lost_in_an_outage_is_looked_at_never_sent_again_blind() -> None:
    # The write's answer is lost (reset after sending), and its looks meet the rest of the outage (two more
    # resets: three in a row, the endpoint is down) until it heals at 10 s: the look then finds the write took
    # effect. One send, whatever the outage; no attempt charged (max_attempts 2 would not cover four failures).
    events: list[OutageEvent] = []
    gate, stop = _gate(300.0, events)
    calls = Calls(Limits(None, 1000.0), BackoffPolicy(max_attempts=2, base=0.5, cap=2.0), stop=stop, outages=gate)
    log: list[str] = []

    class Client:
        meta = type("Meta", (), {"endpoint_url": URL})()

        async def update_user_pool_domain(self, **_: Any) -> Any:
            log.append("send")
            raise _reset()

        async def describe_user_pool_domain(self, **_: Any) -> Any:
            log.append("look")
            await anyio.sleep(0.05)
            if anyio.current_time() < 10.0:
                raise botocore.exceptions.ReadTimeoutError(endpoint_url=URL)
            return {"DomainDescription": {"CustomDomainConfig": {"CertificateArn": "new"}}}

    async def go() -> Any:
        client, limits = Client(), calls.limits.for_region()

        async def mark() -> None:
            log.append("mark")

        async def look() -> Any:
            seen = await calls.call(client, "DescribeUserPoolDomain", limits, "pool", despite_stop=True, Domain="d")
            config = seen["DomainDescription"]["CustomDomainConfig"]
            return seen if config["CertificateArn"] == "new" else None

        counter = AttemptCounter()
        result = await calls.call(
            client, "UpdateUserPoolDomain", limits, "pool", counter, write=WriteOnce(mark, look), Domain="d"
        )
        return result, counter.attempts

    (result, attempts), elapsed = virtual_time.run(go())
    assert result["DomainDescription"]["CustomDomainConfig"]["CertificateArn"] == "new"
    assert log.count("send") == 1 and log[:2] == ["mark", "send"] and set(log[2:]) == {"look"}
    assert attempts == 0 and 10.0 <= elapsed < 21.0  # its one send was lost in the outage: the outage's, not the row's
    assert [(e.ended, e.shape) for e in events] == [(False, "reset+timeout"), (True, "reset+timeout")]


# ---- what the operator sees ---------------------------------------------------------------------------------------
def test_the_outage_event_and_the_progress_line_name_the_shape() -> None:
    since = SystemClock().now()
    began = OutageEvent(URL, since, ended=False, error="503: Service Unavailable", shape="gateway-503")
    fields = log_fields(began)
    assert fields["shape"] == "gateway-503" and fields["state"] == "started" and "gateway-503" in str(fields["message"])
    ended = log_fields(OutageEvent(URL, since, ended=True, seconds=31.0, probes=5, shape="gateway-503", lost=9))
    assert (ended["shape"], ended["lost"], ended["down_s"]) == ("gateway-503", 9, 31.0)

    bar = ProgressBar(3, Console(file=io.StringIO(), width=200))

    def line() -> str:
        return str(bar._progress.tasks[0].fields["detail"])

    bar.outage(began)
    assert f"endpoint unreachable, waiting: {URL} (shape=gateway-503)" in line()
    bar.outage(OutageEvent(URL, since, ended=True, shape="gateway-503"))
    assert "unreachable" not in line()
