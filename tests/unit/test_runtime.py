"""The hub's own calls go through the job's call path (fleet/aws/calls.py): GetCallerIdentity retried under the
job's policy on its clock, a failed connection final at once (not waited out by the outage gate); no sandbox."""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import pytest
from botocore.exceptions import ClientError

from fleet.aws.calls import Calls
from fleet.aws.hub_check import caller_identity
from fleet.aws.limits import Limits
from fleet.aws.outage import Outages
from fleet.aws.retry import BackoffPolicy
from fleet.aws.stop import Stop
from fleet.clock import SystemClock

from .. import virtual_time

ME = {"Arn": "arn:aws:iam::123456789012:user/hub", "Account": "123456789012"}


class FakeSts:
    """Answers GetCallerIdentity from a script (an exception, or the answer)."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers, self.sent = list(answers), 0
        self.meta = type("Meta", (), {"endpoint_url": "https://sts.example"})()

    async def get_caller_identity(self) -> Any:
        self.sent += 1
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def calls(stop: Stop | None = None) -> tuple[Calls, Outages]:
    stop = stop or Stop()
    clock = SystemClock()  # on the virtual-time loop: its sleeps take no real time
    outages = Outages(clock, stop, 300.0)
    return Calls(Limits(1, 5.0), BackoffPolicy(max_attempts=4, base=1.0, cap=5.0), clock, stop, outages), outages


def test_a_throttled_hub_check_is_retried_under_the_jobs_policy() -> None:
    throttled = ClientError({"Error": {"Code": "Throttling", "Message": "slow"}}, "GetCallerIdentity")
    sts = FakeSts([throttled, throttled, ME])
    job_calls, _ = calls()
    found, took = virtual_time.run(caller_identity(sts, job_calls))
    assert found == ME and sts.sent == 3 and 0 < took <= 10  # two backoff sleeps on the job's clock


def test_an_unreachable_sts_is_final_at_once_and_no_outage_is_waited_out() -> None:
    refused = botocore.exceptions.EndpointConnectionError(endpoint_url="https://sts.example")
    sts = FakeSts([refused, ME])
    job_calls, outages = calls()
    with pytest.raises(Exception, match="Could not connect") as failed:
        virtual_time.run(caller_identity(sts, job_calls))
    assert sts.sent == 1 and failed.value.__cause__ is refused and not outages.down()


def test_the_hub_check_goes_even_when_the_job_is_stopping() -> None:
    stop = Stop()
    stop.request("SIGTERM")
    sts = FakeSts([ME])
    job_calls, _ = calls(stop)
    assert virtual_time.run(caller_identity(sts, job_calls))[0] == ME
