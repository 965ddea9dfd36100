"""The sandbox behaves like AWS where moto does not."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from fleet.sandbox.seed import Seeder

from ..conftest import Fleet


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_describe_has_the_certificate_and_the_true_account(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("eu-west-1",), per_region=1)
    a, b = fleet.domains
    got = fleet.describe(a)
    assert got["AWSAccountId"] == a.account_id and got["Status"] == "ACTIVE"
    assert got["CustomDomainConfig"] == {"CertificateArn": a.old_certificate_arn}
    # Another account cannot see it; an unknown domain is an empty description, not an error.
    assert fleet.cognito(b.account_id, b.region).describe_user_pool_domain(Domain=a.domain)["DomainDescription"] == {}
    assert (
        fleet.cognito(a.account_id, a.region).describe_user_pool_domain(Domain="no.example.com")["DomainDescription"]
        == {}
    )


def test_update_rejects_what_aws_rejects(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=2)
    a, a2, b, _ = fleet.domains
    cognito = fleet.cognito(a.account_id, a.region)

    def update(**kwargs: object) -> pytest.ExceptionInfo[ClientError]:
        with pytest.raises(ClientError) as info:
            cognito.update_user_pool_domain(**kwargs)
        return info

    cases = {
        "other pool": dict(
            Domain=a.domain,
            UserPoolId=a2.user_pool_id,
            CustomDomainConfig={"CertificateArn": a.new_certificate_arn},
        ),
        "to prefix": dict(Domain=a.domain, UserPoolId=a.user_pool_id),
        "other account's cert": dict(
            Domain=a.domain,
            UserPoolId=a.user_pool_id,
            CustomDomainConfig={"CertificateArn": b.new_certificate_arn},
        ),
        "not covering": dict(
            Domain=a.domain,
            UserPoolId=a.user_pool_id,
            CustomDomainConfig={"CertificateArn": a2.new_certificate_arn},
        ),
        "unknown cert": dict(
            Domain=a.domain,
            UserPoolId=a.user_pool_id,
            CustomDomainConfig={"CertificateArn": a.new_certificate_arn[:-12] + "000000000000"},
        ),
        "other region": dict(
            Domain=a.domain,
            UserPoolId=a.user_pool_id,
            CustomDomainConfig={"CertificateArn": a.new_certificate_arn.replace("us-east-1", "eu-west-1")},
        ),
    }
    for name, kwargs in cases.items():
        assert error_code(update(**kwargs)) == "InvalidParameterException", name
    assert fleet.box.state.writes == {}
    assert fleet.describe(a)["CustomDomainConfig"]["CertificateArn"] == a.old_certificate_arn
    # Another account's domain does not exist for this one.
    other = fleet.cognito(b.account_id, b.region)
    with pytest.raises(ClientError) as info:
        other.update_user_pool_domain(
            Domain=a.domain,
            UserPoolId=b.user_pool_id,
            CustomDomainConfig={"CertificateArn": b.new_certificate_arn},
        )
    assert error_code(info) == "ResourceNotFoundException"


def test_names_are_unique_prefix_domains_have_no_certificate_and_four_per_region(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=4)
    a, b = fleet.domains[0], fleet.domains[4]
    seeder = Seeder(fleet.box.endpoint)
    other = fleet.cognito(b.account_id, b.region)
    pool = other.create_user_pool(PoolName="extra")["UserPool"]["Id"]
    with pytest.raises(ClientError) as info:  # the same name in another account
        other.create_user_pool_domain(
            Domain=a.domain, UserPoolId=pool, CustomDomainConfig={"CertificateArn": b.new_certificate_arn}
        )
    assert error_code(info) == "InvalidParameterException"
    acm = seeder.session(b.account_id).client("acm", region_name="us-east-1", endpoint_url=fleet.box.endpoint)
    arn = seeder.import_certificate(acm, ["fifth.example.net"])
    with pytest.raises(ClientError) as info:  # a fifth custom domain in the account+region
        other.create_user_pool_domain(
            Domain="fifth.example.net", UserPoolId=pool, CustomDomainConfig={"CertificateArn": arn}
        )
    assert error_code(info) == "LimitExceededException"
    other.create_user_pool_domain(Domain=f"prefix-{b.account_id}", UserPoolId=pool)
    got = other.describe_user_pool_domain(Domain=f"prefix-{b.account_id}")["DomainDescription"]
    assert "CustomDomainConfig" not in got and got["CloudFrontDistribution"].endswith(".amazoncognito.com")
    with pytest.raises(ClientError) as info:
        other.update_user_pool_domain(
            Domain=f"prefix-{b.account_id}",
            UserPoolId=pool,
            CustomDomainConfig={"CertificateArn": b.new_certificate_arn},
        )
    assert error_code(info) == "InvalidParameterException"


def test_updating_then_active_and_a_stable_cloudfront_domain(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    (d,) = fleet.domains
    fleet.box.state.configure(propagation_delay=1.5)
    cloudfront = fleet.describe(d)["CloudFrontDistribution"]
    out = fleet.cognito(d.account_id, d.region).update_user_pool_domain(
        Domain=d.domain,
        UserPoolId=d.user_pool_id,
        CustomDomainConfig={"CertificateArn": d.new_certificate_arn},
    )
    assert out["CloudFrontDomain"] == cloudfront
    assert fleet.describe(d)["Status"] == "UPDATING"
    time.sleep(1.6)
    assert fleet.describe(d)["Status"] == "ACTIVE"
    assert fleet.box.state.writes == {d.domain: 1}


def test_quotas_throttle_like_aws(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    (d,) = fleet.domains
    fleet.box.state.configure(enforce_quotas=True)
    cognito = fleet.cognito(d.account_id, d.region)
    codes = []
    for _ in range(12):  # 5 req/s per pool and operation: a burst of 12 must be throttled
        try:
            cognito.update_user_pool_domain(
                Domain=d.domain,
                UserPoolId=d.user_pool_id,
                CustomDomainConfig={"CertificateArn": d.new_certificate_arn},
            )
            codes.append("ok")
        except ClientError as exc:
            codes.append(exc.response["Error"]["Code"])
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert codes.count("ok") >= 5 and "TooManyRequestsException" in codes
    assert fleet.box.state.faults["quota"] == codes.count("TooManyRequestsException")


def test_expired_credentials_are_refused(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    (d,) = fleet.domains
    fleet.box.state.configure(credential_lifetime=1.0)
    cognito = fleet.cognito(d.account_id, d.region)
    cognito.describe_user_pool_domain(Domain=d.domain)
    time.sleep(1.1)
    with pytest.raises(ClientError) as info:
        cognito.describe_user_pool_domain(Domain=d.domain)
    assert error_code(info) == "ExpiredTokenException"
