"""The sandbox checks who calls and what they may do, as AWS does: SigV4 signatures and IAM policies (auth.py)."""

from __future__ import annotations

import http.client
import json
import os
import ssl
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from fleet.sandbox.auth import ADMIN_CREDENTIALS, HUB_CREDENTIALS, IAM_DIR
from fleet.sandbox.seed import SeededDomain
from fleet.sandbox.server import Sandbox

from ..conftest import Fleet
from ..files import by_domain

NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})
HUB = (HUB_CREDENTIALS["AWS_ACCESS_KEY_ID"], HUB_CREDENTIALS["AWS_SECRET_ACCESS_KEY"], None)
COGNITO_TARGET = "AWSCognitoIdentityProviderService."


def client(box: Sandbox, service: str, keys: tuple[str, str, str | None], region: str = "us-east-1") -> Any:
    access, secret, token = keys
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=box.endpoint,
        config=NO_RETRIES,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        aws_session_token=token,
    )


def fleet_role(box: Sandbox, account: str) -> tuple[str, str, str]:
    """The keys of the engine's role in ``account``, assumed by the hub as the engine does."""
    creds = client(box, "sts", HUB).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/CognitoFleetRole", RoleSessionName="auth-test"
    )["Credentials"]
    return creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]


def refused(call: Any, **kwargs: Any) -> tuple[str, int, dict[str, Any]]:
    """The error code, HTTP status and parsed error of a call that must fail."""
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    response = info.value.response
    return str(response["Error"]["Code"]), int(response["ResponseMetadata"]["HTTPStatusCode"]), response


def signed(
    box: Sandbox,
    keys: tuple[str, str, str | None],
    operation: str,
    payload: dict[str, Any],
    region: str = "us-east-1",
    when: datetime | None = None,
    scope: str = "cognito-idp",
) -> AWSRequest:
    """A Cognito request signed by botocore's SigV4Auth for ``scope``, as a client would send it (at ``when``:
    now)."""
    access, secret, token = keys
    request = AWSRequest(
        method="POST",
        url=box.endpoint + "/",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": COGNITO_TARGET + operation},
    )
    auth = SigV4Auth(Credentials(access, secret, token), scope, region)
    if when is None:
        auth.add_auth(request)
        return request
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    request.context["timestamp"] = stamp
    request.headers["X-Amz-Date"] = stamp
    if token:
        request.headers["X-Amz-Security-Token"] = token
    signature = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    signed_headers = auth.signed_headers(auth.headers_to_sign(request))
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={auth.scope(request)}, SignedHeaders={signed_headers}, Signature={signature}"
    )
    return request


def send(box: Sandbox, request: AWSRequest, body: bytes | None = None) -> tuple[int, dict[str, Any]]:
    """Send a prepared request as it is (or with another body) over plain HTTP; status and JSON answer."""
    parts = urlsplit(box.endpoint)
    data = request.body if body is None else body
    assert isinstance(data, bytes)
    headers = dict(request.headers.items())
    headers["Content-Length"] = str(len(data))
    if parts.scheme == "https":  # the session sandbox serves HTTPS with a CA the tests trust
        context = ssl.create_default_context(cafile=os.environ["AWS_CA_BUNDLE"])
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=10, context=context
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request(request.method or "POST", "/", body=data, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def update_payload(d: SeededDomain, arn: str) -> dict[str, Any]:
    return {"Domain": d.domain, "UserPoolId": d.user_pool_id, "CustomDomainConfig": {"CertificateArn": arn}}


def test_a_wrong_secret_is_refused_before_anything_happens(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    (d,) = fleet.domains
    access, _secret, token = fleet_role(fleet.box, d.account_id)
    cognito = client(fleet.box, "cognito-idp", (access, "not-the-secret", token))
    code, status, response = refused(cognito.update_user_pool_domain, **update_payload(d, d.new_certificate_arn))
    assert (code, status) == ("InvalidSignatureException", 400)  # a JSON service's code for it
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "InvalidSignatureException"
    assert fleet.box.state.writes == {} and fleet.box.state.calls["UpdateUserPoolDomain"] == 0
    assert fleet.box.certificate_of(d.domain) == d.old_certificate_arn
    # STS speaks the query protocol: an XML error with its own code and 403.
    sts = client(fleet.box, "sts", (HUB[0], "not-the-secret", None))
    assert refused(sts.get_caller_identity)[:2] == ("SignatureDoesNotMatch", 403)
    assert fleet.box.state.faults["bad_signature"] == 2


def test_unknown_keys_and_tokens_that_are_not_the_keys_are_refused(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    (d,) = fleet.domains
    box = fleet.box
    access, secret, token = fleet_role(box, d.account_id)
    _, _, other_token = fleet_role(box, d.account_id)
    for keys in [
        ("AKIAUNKNOWN000000000", "whatever", None),  # unknown key
        (access, secret, None),  # an assumed-role key without its token
        (access, secret, other_token),  # ... with another session's token
        (HUB[0], HUB[1], token),  # a static key with a token
    ]:
        cognito = client(box, "cognito-idp", keys)
        assert refused(cognito.describe_user_pool_domain, Domain=d.domain)[:2] == ("UnrecognizedClientException", 400)
        assert refused(client(box, "sts", keys).get_caller_identity)[:2] == ("InvalidClientTokenId", 403)
    assert box.state.faults["invalid_token"] == 8 and box.state.calls["DescribeUserPoolDomain"] == 0
    unsigned = AWSRequest(
        method="POST",
        url=box.endpoint + "/",
        data=json.dumps({"Domain": d.domain}).encode(),
        headers={"X-Amz-Target": COGNITO_TARGET + "DescribeUserPoolDomain"},
    )
    assert send(box, unsigned)[1]["__type"] == "MissingAuthenticationTokenException"
    # The right token with its key passes.
    got = client(box, "cognito-idp", (access, secret, token)).describe_user_pool_domain(Domain=d.domain)
    assert got["DomainDescription"]["Domain"] == d.domain


def test_a_body_changed_after_signing_is_refused(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    (d,) = fleet.domains
    keys = fleet_role(fleet.box, d.account_id)
    request = signed(fleet.box, keys, "UpdateUserPoolDomain", update_payload(d, d.old_certificate_arn))
    tampered = json.dumps(update_payload(d, d.new_certificate_arn)).encode()
    status, answer = send(fleet.box, request, body=tampered)
    assert (status, answer["__type"]) == (400, "InvalidSignatureException")
    assert fleet.box.state.writes == {} and fleet.box.certificate_of(d.domain) == d.old_certificate_arn
    # Signed right, but for another service than the one it calls (moto would route it there).
    other = signed(fleet.box, keys, "UpdateUserPoolDomain", update_payload(d, d.new_certificate_arn), scope="acm")
    status, answer = send(fleet.box, other)
    assert (status, answer["__type"]) == (400, "InvalidSignatureException") and "cognito-idp" in answer["message"]
    assert fleet.box.state.writes == {} and fleet.box.state.faults["bad_signature"] == 2
    # The same request unchanged is accepted: the hand-made signing is right, only the tampering failed.
    status, answer = send(fleet.box, request)
    assert status == 200, answer
    assert fleet.box.state.writes == {d.domain: 1}


def test_a_signature_dated_outside_fifteen_minutes_is_refused(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    (d,) = fleet.domains
    keys = fleet_role(fleet.box, d.account_id)
    now = datetime.now(UTC)
    stale = signed(fleet.box, keys, "DescribeUserPoolDomain", {"Domain": d.domain}, when=now - timedelta(minutes=20))
    status, answer = send(fleet.box, stale)
    assert (status, answer["__type"]) == (400, "InvalidSignatureException") and "expired" in answer["message"]
    recent = signed(fleet.box, keys, "DescribeUserPoolDomain", {"Domain": d.domain}, when=now - timedelta(minutes=5))
    assert send(fleet.box, recent)[0] == 200


def test_the_hub_may_not_call_cognito_nor_assume_another_role(box: Sandbox) -> None:
    code, status, response = refused(client(box, "cognito-idp", HUB).list_user_pools, MaxResults=10)
    assert (code, status) == ("AccessDeniedException", 400)
    message = response["Error"]["Message"]
    assert "is not authorized to perform: cognito-idp:ListUserPools on resource: *" in message
    sts = client(box, "sts", HUB)
    role = "arn:aws:iam::210000000000:role/SomethingElse"
    code, status, response = refused(sts.assume_role, RoleArn=role, RoleSessionName="other")
    assert (code, status) == ("AccessDenied", 403) and role in response["Error"]["Message"]
    assert sts.get_caller_identity()["Account"] == "123456789012"  # always allowed, as in AWS
    assert box.state.faults["denied"] == 2 and box.state.assume_role_calls == {}


def test_the_fleet_role_reads_and_updates_but_deletes_nothing(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    (d,) = fleet.domains
    keys = fleet_role(fleet.box, d.account_id)
    cognito, acm = client(fleet.box, "cognito-idp", keys), client(fleet.box, "acm", keys)
    code, status, response = refused(cognito.delete_user_pool_domain, Domain=d.domain, UserPoolId=d.user_pool_id)
    assert (code, status) == ("AccessDeniedException", 400)
    pool_arn = f"arn:aws:cognito-idp:us-east-1:{d.account_id}:userpool/{d.user_pool_id}"
    assert f"cognito-idp:DeleteUserPoolDomain on resource: {pool_arn}" in response["Error"]["Message"]
    assert "assumed-role/CognitoFleetRole/auth-test" in response["Error"]["Message"]
    assert refused(acm.delete_certificate, CertificateArn=d.old_certificate_arn)[:2] == ("AccessDeniedException", 400)
    assert refused(cognito.create_user_pool, PoolName="nope")[0] == "AccessDeniedException"
    assert fleet.box.state.faults["denied"] == 3
    # What the engine needs is allowed.
    assert acm.describe_certificate(CertificateArn=d.new_certificate_arn)["Certificate"]["Status"] == "ISSUED"
    assert cognito.describe_user_pool(UserPoolId=d.user_pool_id)["UserPool"]["Id"] == d.user_pool_id
    cognito.update_user_pool_domain(**update_payload(d, d.new_certificate_arn))
    assert fleet.box.certificate_of(d.domain) == d.new_certificate_arn
    assert fleet.describe(d)["Domain"] == d.domain  # still there


def test_the_engine_migrates_a_fleet_with_both_checks_on(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=3, regions=("us-east-1", "eu-west-1"), per_region=2)
    knobs = fleet.box.state.knobs
    assert knobs.verify_signatures and knobs.enforce_iam  # the default, for every test
    result = fleet.run()
    assert result.exit_code == 0
    assert all(fleet.box.certificate_of(d.domain) == d.new_certificate_arn for d in fleet.domains)
    faults = fleet.box.state.faults
    assert not {"denied", "bad_signature", "invalid_token", "expired_token"} & set(faults), faults
    assert fleet.box.state.calls["UpdateUserPoolDomain"] == len(fleet.domains)


def test_the_knobs_turn_each_check_off(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    (d,) = fleet.domains
    access, _secret, token = fleet_role(fleet.box, d.account_id)
    fleet.box.state.configure(verify_signatures=False)
    wrong = client(fleet.box, "cognito-idp", (access, "not-the-secret", token))
    assert wrong.describe_user_pool_domain(Domain=d.domain)["DomainDescription"]["Domain"] == d.domain
    # IAM still holds the (now unverified) key to its role's policy.
    assert refused(wrong.delete_user_pool_domain, Domain=d.domain, UserPoolId=d.user_pool_id)[0] == (
        "AccessDeniedException"
    )
    fleet.box.state.configure(enforce_iam=False)
    assert client(fleet.box, "cognito-idp", HUB).list_user_pools(MaxResults=10)["UserPools"] is not None


def test_the_admin_is_unrestricted_in_its_own_sessions_only(box: Sandbox) -> None:
    admin = (ADMIN_CREDENTIALS["AWS_ACCESS_KEY_ID"], ADMIN_CREDENTIALS["AWS_SECRET_ACCESS_KEY"], None)
    creds = client(box, "sts", admin).assume_role(
        RoleArn="arn:aws:iam::220000000000:role/CognitoFleetRole", RoleSessionName="setup"
    )["Credentials"]
    keys = (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    pool = client(box, "cognito-idp", keys).create_user_pool(PoolName="admin-made")["UserPool"]["Id"]
    # The hub's session of the same role in the same account is held to the role policy.
    hub_session = client(box, "cognito-idp", fleet_role(box, "220000000000"))
    assert refused(hub_session.delete_user_pool, UserPoolId=pool)[0] == "AccessDeniedException"
    identity = box.app.authority.identity(keys[0])
    assert identity is not None and identity.policy is None and identity.account == "220000000000"
    assert keys[1] not in repr(identity) and keys[2] not in repr(identity)  # safe to log


def test_a_certificate_update_needs_the_cloudfront_permission_as_aws_says(make_fleet, tmp_path, monkeypatch) -> None:
    # AWS's Cognito guide ("Using your own domain for managed login"): updating a custom domain's certificate
    # needs cloudfront:UpdateDistribution. The shipped role has it; a role policy without it is refused like AWS.
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    first, second = fleet.domains
    authority = fleet.box.app.authority
    shipped = json.loads((authority.iam_dir / "role-policy.json").read_text(encoding="utf-8"))
    without = [s for s in shipped["Statement"] if "cloudfront:UpdateDistribution" not in s["Action"]]
    assert len(without) == len(shipped["Statement"]) - 1, "the shipped role policy grants the permission"
    for name in ("hub-policy.json", "role-trust-policy.json"):
        (tmp_path / name).write_text((authority.iam_dir / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "role-policy.json").write_text(json.dumps({**shipped, "Statement": without}), encoding="utf-8")
    monkeypatch.setattr(authority, "iam_dir", tmp_path)
    monkeypatch.setattr(authority, "_policies", {})
    monkeypatch.setattr(authority, "_decisions", {})

    cognito = client(fleet.box, "cognito-idp", fleet_role(fleet.box, first.account_id))
    code, status, response = refused(
        cognito.update_user_pool_domain, **update_payload(first, first.new_certificate_arn)
    )
    assert (code, status) == ("AccessDeniedException", 400)
    assert "cloudfront:UpdateDistribution on resource: *" in response["Error"]["Message"]
    assert fleet.box.certificate_of(first.domain) == first.old_certificate_arn  # nothing changed
    # Reads need no CloudFront permission.
    assert cognito.describe_user_pool_domain(Domain=first.domain)["DomainDescription"]["Domain"] == first.domain
    # The engine under such a policy: every row fails with AWS's code, nothing is written.
    result = fleet.run(max_attempts=1)
    assert result.exit_code == 1
    report = by_domain(result.report)
    assert {(r["status"], r["error_code"]) for r in report.values()} == {("failed", "AccessDeniedException")}
    assert fleet.box.certificate_of(second.domain) == second.old_certificate_arn

    # The shipped policy: the same update goes through.
    monkeypatch.setattr(authority, "iam_dir", IAM_DIR)
    monkeypatch.setattr(authority, "_policies", {})
    monkeypatch.setattr(authority, "_decisions", {})
    cognito.update_user_pool_domain(**update_payload(first, first.new_certificate_arn))
    assert fleet.box.certificate_of(first.domain) == first.new_certificate_arn
