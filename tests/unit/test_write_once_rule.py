"""The write-once rule (fleet/aws/write_once.py), one test per row of its decision table, through the calls layer
(limits, retries, the stop flag) on virtual time: a fake client plays each AWS answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore.exceptions
import pytest
from botocore.exceptions import ClientError

from fleet.aws.calls import Calls
from fleet.aws.limits import Limits
from fleet.aws.retry import AttemptCounter, BackoffPolicy
from fleet.aws.stop import Stop, StopRequested
from fleet.aws.write_once import WriteOnce

from .. import virtual_time

POLICY = BackoffPolicy(max_attempts=4, base=0.5, cap=2.0)
WRITTEN = {"CloudFrontDomain": "d111.cloudfront.net"}


def error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "X")


LOST = botocore.exceptions.ConnectionClosedError(endpoint_url="https://cognito-idp.example")  # sent, answer lost
NEVER = botocore.exceptions.ConnectTimeoutError(endpoint_url="https://cognito-idp.example")  # nothing sent


class Script:
    """What AWS answers each write attempt (an exception, or the answer) and each look (the result, None, or an
    exception); and the order of everything that happened."""

    def __init__(self, sends: list[Any], looks: list[Any] | None = None) -> None:
        self.sends, self.looks, self.log = list(sends), list(looks or []), list[str]()

    async def update_user_pool_domain(self, **_: Any) -> Any:
        self.log.append("send")
        answer = self.sends.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def mark(self) -> None:
        self.log.append("mark")

    async def look(self) -> Any:
        self.log.append("look")
        answer = self.looks.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def write(script: Script, stop: Stop | None = None, before: Callable[[Stop], None] | None = None) -> Any:
    stop = stop or Stop()
    calls = Calls(Limits(None, 1000.0), POLICY, stop=stop)

    async def go() -> Any:
        if before is not None:
            before(stop)
        rule = WriteOnce(script.mark, script.look)
        limits = calls.limits.for_region()
        return await calls.call(script, "UpdateUserPoolDomain", limits, "pool", AttemptCounter(), write=rule)

    result, _ = virtual_time.run(go())
    return result


def test_sent_and_answered_marks_once_and_never_looks() -> None:
    script = Script([WRITTEN])
    assert write(script) == WRITTEN
    assert script.log == ["mark", "send"]


def test_stopping_before_the_first_send_sends_nothing_and_marks_nothing() -> None:
    script = Script([WRITTEN])
    with pytest.raises(StopRequested):
        write(script, before=lambda stop: stop.request("SIGTERM"))
    assert script.log == []


def test_a_refusal_is_the_answer_no_look() -> None:
    script = Script([error("InvalidParameterException")])
    with pytest.raises(ClientError):
        write(script)
    assert script.log == ["mark", "send"]


def test_a_throttle_is_an_answer_retried_without_a_look() -> None:
    script = Script([error("TooManyRequestsException"), WRITTEN])
    assert write(script) == WRITTEN
    assert script.log == ["mark", "send", "send"]


def test_a_connection_never_made_sent_nothing_so_it_is_sent_again_without_a_look() -> None:
    script = Script([NEVER, WRITTEN])
    assert write(script) == WRITTEN
    assert script.log == ["mark", "send", "send"]


def test_unknown_then_on_the_target_it_took_effect_and_is_not_sent_again() -> None:
    seen = {"CloudFrontDomain": "d111.cloudfront.net", "Status": "UPDATING"}
    script = Script([LOST], looks=[seen])
    assert write(script) == seen
    assert script.log == ["mark", "send", "look"]


def test_unknown_then_not_on_the_target_it_is_sent_again_after_the_look() -> None:
    script = Script([error("InternalErrorException", 500), WRITTEN], looks=[None])
    assert write(script) == WRITTEN
    assert script.log == ["mark", "send", "look", "send"]


def test_refused_while_updating_is_looked_at_first() -> None:
    # Cognito refuses a second update while the first distributes: it may be ours (a lost answer before it).
    seen = {"CloudFrontDomain": "d111.cloudfront.net", "Status": "UPDATING"}
    script = Script([error("ConcurrentModificationException")], looks=[seen])
    assert write(script) == seen
    assert script.log == ["mark", "send", "look"]


def test_a_look_that_fails_is_retried_never_skipped() -> None:
    script = Script([LOST, WRITTEN], looks=[error("TooManyRequestsException"), None])
    assert write(script) == WRITTEN
    assert script.log == ["mark", "send", "look", "look", "send"]  # no send between a failed look and an answer


def test_out_of_attempts_on_an_unknown_outcome_one_last_look_decides() -> None:
    lost = botocore.exceptions.ReadTimeoutError(endpoint_url="https://x")
    script = Script([lost] * 4, looks=[None, None, None, {"Status": "UPDATING"}])
    assert write(script) == {"Status": "UPDATING"}
    assert script.log.count("send") == 4 and script.log[-1] == "look"


def test_out_of_attempts_when_the_last_look_finds_nothing_the_error_stands() -> None:
    lost = botocore.exceptions.ReadTimeoutError(endpoint_url="https://x")
    script = Script([lost] * 4, looks=[None] * 4)
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        write(script)
    assert script.log.count("look") == 4


def test_a_stop_after_the_first_send_still_looks() -> None:
    # The run is asked to stop while the write's answer is lost: the look belongs to a sent write and runs.
    stop = Stop()
    script = Script([LOST], looks=[{"Status": "UPDATING"}])
    original = script.update_user_pool_domain

    async def send_then_stop(**kw: Any) -> Any:
        stop.request("SIGTERM")
        return await original(**kw)

    script.update_user_pool_domain = send_then_stop  # type: ignore[method-assign]
    assert write(script, stop=stop) == {"Status": "UPDATING"}
    assert script.log == ["mark", "send", "look"]


def test_the_rule_itself_on_virtual_time() -> None:
    # The rule without the calls layer: its state after each kind of failure.
    async def never() -> None:
        raise AssertionError("no look expected")

    async def mark() -> None:
        pass

    rule: WriteOnce[str] = WriteOnce(mark, never)
    rule.failed(error("TooManyRequestsException"))
    rule.failed(NEVER)
    assert not rule.unknown
    assert virtual_time.run(rule.before_attempt())[0] is None and rule.looks == 0
    rule.failed(LOST)
    assert rule.unknown
