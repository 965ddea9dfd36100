"""One successful write per domain: a write whose outcome is unknown is followed by a describe, never a blind resend."""

from __future__ import annotations

import socket

import aiohttp
import botocore.exceptions
import pytest
from botocore.exceptions import ClientError

from fleet.aws.retry import outcome_unknown
from fleet.migration.row import Mode

from ..conftest import Fleet


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize(
    ("exc", "unknown"),
    [
        (_client_error("InternalErrorException", 500), True),
        (_client_error("ConcurrentModificationException", 400), True),
        (_client_error("ServiceUnavailable", 503), True),
        (botocore.exceptions.ReadTimeoutError(endpoint_url="https://x"), True),
        (botocore.exceptions.ConnectionClosedError(endpoint_url="https://x"), True),
        (aiohttp.ServerDisconnectedError(), True),
        # Answers, or nothing sent: safe to send again without looking.
        (_client_error("TooManyRequestsException", 400), False),
        (_client_error("InvalidParameterException", 400), False),
        (botocore.exceptions.ConnectTimeoutError(endpoint_url="https://x"), False),
        # A reset after the request left reaches us as EndpointConnectionError(ClientOSError): unknown.
        (botocore.exceptions.EndpointConnectionError(endpoint_url="https://x", error=aiohttp.ClientOSError()), True),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="https://x", error=socket.gaierror()), False),
        (botocore.exceptions.SSLError(endpoint_url="https://x", error="bad"), False),
    ],
)
def test_which_failures_leave_a_write_open(exc: BaseException, unknown: bool) -> None:
    assert outcome_unknown(exc) is unknown


def _check_each_domain_written_once(fleet: Fleet) -> None:
    stats = fleet.box.state.stats()
    assert stats["writes"] == {d.domain: 1 for d in fleet.domains}
    for d in fleet.domains:
        assert fleet.box.certificate_of(d.domain) == d.new_certificate_arn


def test_lost_write_responses_write_each_domain_once(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=5, regions=("us-east-1", "eu-west-1"), per_region=4)
    # Half of the writes are applied and their answer never arrives; AWS refuses an update while distributing.
    fleet.box.state.configure(write_loss_after_rate=0.5, refuse_while_updating=True, propagation_delay=0.3, seed=3)
    result = fleet.run()
    lost = fleet.box.state.faults["write_lost_after"]
    assert lost >= 10, "the fault must really have hit a good share of the 40 writes"
    assert result.exit_code == 0, result.counts
    # Not one row failed: pending, or verified where the confirming describe already saw it ACTIVE.
    assert result.counts["pending"] + result.counts["verified"] == sum(result.counts.values()) == 40
    _check_each_domain_written_once(fleet)
    # Each lost answer cost one describe, no second write.
    assert fleet.box.state.calls["DescribeUserPoolDomain"] == 40 + lost


def test_lost_write_requests_are_sent_again_after_a_describe(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1", "eu-west-1"), per_region=4)
    fleet.box.state.configure(write_loss_before_rate=0.5, seed=5)
    # 20 attempts: with 8, one of 16 domains loses all its writes ~6% of the time (0.5^8 each), a flaky failure.
    result = fleet.run(max_attempts=20)
    lost = fleet.box.state.faults["write_lost_before"]
    assert lost >= 4
    assert result.counts == {"pending": 16}
    _check_each_domain_written_once(fleet)
    # Every lost request was described (not on the target) and sent again.
    assert fleet.box.state.calls["UpdateUserPoolDomain"] == 16 + lost
    assert fleet.box.state.calls["DescribeUserPoolDomain"] == 16 + lost


def test_a_write_lost_after_being_applied_is_verified_with_wait(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=2)
    fleet.box.state.configure(write_loss_after_rate=1.0, refuse_while_updating=True, propagation_delay=0.2)
    result = fleet.run(mode=Mode(wait=True, wait_interval=0.05, wait_timeout=10))
    assert result.counts == {"verified": 4}
    _check_each_domain_written_once(fleet)


def test_concurrent_modification_by_someone_else_is_looked_at_not_counted_as_ours(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    d = fleet.domains[0]
    fleet.box.state.configure(refuse_while_updating=True, propagation_delay=30)
    # Someone else is mid-update on the domain (to its old certificate): AWS refuses ours while it distributes.
    fleet.cognito(d.account_id, d.region).update_user_pool_domain(
        Domain=d.domain, UserPoolId=d.user_pool_id, CustomDomainConfig={"CertificateArn": d.old_certificate_arn}
    )
    fleet.box.state.reset_counters()
    result = fleet.run(max_attempts=3)
    assert result.counts == {"failed": 1}
    assert fleet.box.state.writes[d.domain] == 0
    # Row start, then a describe after each refusal (the last one too: out of attempts, one last look): each
    # found it not on the target, so the write was sent again, and in the end the row failed.
    assert fleet.box.state.calls["DescribeUserPoolDomain"] == 1 + 3
    assert fleet.box.state.calls["UpdateUserPoolDomain"] == 3
    # Once AWS takes updates again, the next run writes it, once.
    fleet.box.state.configure(refuse_while_updating=False)
    assert fleet.run().counts == {"pending": 1}
    assert fleet.box.state.writes[d.domain] == 1
    assert fleet.box.certificate_of(d.domain) == d.new_certificate_arn
