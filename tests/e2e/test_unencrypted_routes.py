"""Every way a request could leave unencrypted goes through the plain-HTTP guard (issue 25, control 4): the proxy a
plain-HTTP request would be sent to, and the endpoints botocore's own credential providers call (a role profile's
AssumeRole, SSO), which ``--endpoint-url`` does not reach. Refused before any connection: the hosts are ``.invalid``
names, and the tests record every lookup of them (none may happen)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aioboto3
import botocore.session
import pytest
from click.testing import CliRunner

from fleet.aws.endpoints import Endpoint, InsecureEndpoint, credential_endpoints, proxy_for, require_encryption, summary
from fleet.cli import main
from fleet.sandbox.auth import HUB_CREDENTIALS
from fleet.sandbox.server import Sandbox

from ..conftest import Fleet
from ..files import events

PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY")


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The ``.invalid`` names the process tried to resolve (each fails: nothing ever connects to them)."""
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    seen: list[str] = []
    real = socket.getaddrinfo

    def recording(name: Any, *args: Any, **kwargs: Any) -> Any:
        text = name.decode() if isinstance(name, bytes) else str(name or "")
        if text.endswith(".invalid"):
            seen.append(text)
            raise socket.gaierror(socket.EAI_NONAME, "no such host (test)")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    yield seen


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def error(out: str) -> str:
    (found,) = [str(e["message"]) for e in events(out) if e["event"] == "error"]
    return found


def run_args(fleet: Fleet, endpoint: str, *more: str) -> list[str]:
    return ["run", str(fleet.manifest), "--endpoint-url", endpoint, "--checkpoint", str(fleet.checkpoint), *more]


def test_plain_http_through_a_proxy_on_another_machine_is_refused(
    make_fleet, monkeypatch: pytest.MonkeyPatch, lookups: list[str]
) -> None:
    """A loopback http:// endpoint is allowed, but HTTP_PROXY would carry its signed requests (and the keys in
    AssumeRole's answers) in clear text to the proxy."""
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    monkeypatch.setenv("HTTP_PROXY", "http://ops:s3cret@proxy.invalid:3128")
    code, out = invoke(*run_args(fleet, "http://127.0.0.1:9"))
    assert code == 2, out
    message = error(out)
    assert "sts us-east-1" in message and "proxy http://***@proxy.invalid:3128 (HTTP_PROXY)" in message, message
    assert "NO_PROXY=127.0.0.1" in message and "--insecure-endpoint" in message
    assert "s3cret" not in out and "hub_identity" not in out
    assert lookups == []  # refused before any connection: the proxy's name was not even looked up
    assert fleet.box.state.calls == {} and not fleet.checkpoint.exists()
    # NO_PROXY takes the endpoint off the proxy: allowed (and nothing listens on port 9: the hub check fails).
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    code, out = invoke(*run_args(fleet, "http://127.0.0.1:9"))
    assert code == 2 and "go through the proxy" not in error(out) and error(out).startswith("error: hub:"), out
    assert lookups == []


@pytest.mark.parametrize(
    ("url", "proxy", "allowed"),
    [
        ("http://127.0.0.1:5000", None, True),
        ("http://127.0.0.1:5000", "http://127.0.0.1:3128", True),
        ("http://127.0.0.1:5000", "http://localhost:3128", True),
        ("http://127.0.0.1:5000", "https://proxy.example.com:3128", True),  # encrypted to the proxy
        ("http://127.0.0.1:5000", "http://proxy.example.com:3128", False),
        ("http://127.0.0.1:5000", "http://10.1.2.3:3128", False),
        ("https://sts.us-east-1.amazonaws.com", "http://proxy.example.com:3128", True),  # a CONNECT tunnel: TLS inside
    ],
)
def test_the_proxy_of_a_plain_http_endpoint_must_be_loopback_or_https(
    url: str, proxy: str | None, allowed: bool
) -> None:
    endpoint = Endpoint("sts", "us-east-1", url, "--endpoint-url", proxy)
    if allowed:
        require_encryption(endpoint, allow_plain_http=False)
    else:
        with pytest.raises(InsecureEndpoint, match="go through the proxy"):
            require_encryption(endpoint, allow_plain_http=False)
        require_encryption(endpoint, allow_plain_http=True)


def test_the_proxy_is_the_one_botocore_would_use_and_is_shown_without_its_password(
    monkeypatch: pytest.MonkeyPatch, lookups: list[str]
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "ops:s3cret@proxy.invalid:3128")  # botocore adds http://
    monkeypatch.setenv("HTTP_PROXY", "http://plain.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example.com")
    assert proxy_for("https://sts.us-east-1.amazonaws.com") == "http://ops:s3cret@proxy.invalid:3128"
    assert proxy_for("http://127.0.0.1:5000") == "http://plain.invalid:3128"
    assert proxy_for("https://cognito-idp.internal.example.com") is None
    shown = summary({("sts", "x"): Endpoint("sts", "x", "https://a", "s", proxy_for("https://a"), "ca (c)")})
    assert shown == {
        "sts x": {"url": "https://a", "source": "s", "proxy": "http://***@proxy.invalid:3128", "ca_bundle": "ca (c)"}
    }
    assert lookups == []


async def test_botocore_clients_use_the_proxy_fleet_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """fleet/aws/endpoints.py computes the proxy as botocore's EndpointCreator does; the proxy configuration of an
    aiobotocore client (private: ``_endpoint.http_session._proxy_config``) must agree, or this fails loudly."""
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://plain.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "localhost")
    keys = {"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "x"}
    for url in ("http://127.0.0.1:5000", "http://localhost:5000", "https://sts.us-east-1.amazonaws.com"):
        async with aioboto3.Session().client("sts", region_name="us-east-1", endpoint_url=url, **keys) as client:
            assert client._endpoint.http_session._proxy_config.proxy_url_for(url) == proxy_for(url), url


def profiles(tmp_path: Path, *sections: str) -> Path:
    """An AWS config file: a source profile with the sandbox hub's keys, and ``sections``."""
    keys = f"aws_access_key_id = {HUB_CREDENTIALS['AWS_ACCESS_KEY_ID']}\n"
    keys += f"aws_secret_access_key = {HUB_CREDENTIALS['AWS_SECRET_ACCESS_KEY']}\n"
    config = tmp_path / "aws-config"
    config.write_text(f"[profile src]\n{keys}" + "".join(sections))
    config.chmod(0o600)
    return config


ROLE = "[profile hub]\nrole_arn = arn:aws:iam::123456789012:role/Hub\nsource_profile = src\n"


@pytest.mark.parametrize(
    ("variable", "extra", "source"),
    [
        ("AWS_ENDPOINT_URL_STS", "", "AWS_ENDPOINT_URL_STS"),
        ("AWS_ENDPOINT_URL", "", "AWS_ENDPOINT_URL"),
        (None, "endpoint_url = http://sts.invalid\n", "profile hub: endpoint_url"),
    ],
)
def test_a_role_profiles_assume_role_over_plain_http_is_refused_before_any_credential(
    make_fleet,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    lookups: list[str],
    variable: str | None,
    extra: str,
    source: str,
) -> None:
    """``--endpoint-url https://…`` sends the tool's own calls there; botocore's AssumeRole for the profile's role
    goes where the environment or the profile says (the review's finding: a signed AssumeRole in clear text)."""
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(profiles(tmp_path, ROLE + extra)))
    if variable:
        monkeypatch.setenv(variable, "http://sts.invalid")
    code, out = invoke(*run_args(fleet, fleet.box.endpoint, "--profile", "hub"))
    assert code == 2, out
    message = error(out)
    assert "endpoint http://sts.invalid for sts us-east-1 (credentials)" in message, message
    assert f"(from {source})" in message and "unencrypted" in message
    assert lookups == []  # no AssumeRole was attempted
    assert fleet.box.state.calls == {} and not fleet.box.state.assume_role_calls and not fleet.checkpoint.exists()


def test_an_sso_profiles_portal_over_plain_http_is_refused(
    make_fleet, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lookups: list[str]
) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    sso = (
        "[profile corp]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Hub\n"
        "[sso-session corp]\nsso_region = eu-west-1\nsso_start_url = https://corp.awsapps.com/start\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(profiles(tmp_path, sso)))
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSO", "http://portal.invalid")
    code, out = invoke(*run_args(fleet, fleet.box.endpoint, "--profile", "corp"))
    assert code == 2, out
    assert "http://portal.invalid for sso eu-west-1 (credentials) (from AWS_ENDPOINT_URL_SSO)" in error(out)
    assert lookups == [] and fleet.box.state.calls == {}


def test_the_credential_endpoints_are_those_of_the_profile_chain(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    chained = (
        "[profile outer]\nrole_arn = arn:aws:iam::123456789012:role/Outer\nsource_profile = hub\nregion = eu-west-1\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(profiles(tmp_path, ROLE, chained)))
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)

    def found(profile: str) -> dict[str, dict[str, str]]:
        session = botocore.session.Session(profile=profile)
        return summary({(e.label, ""): e for e in credential_endpoints(session, "us-east-1")})

    assert found("src") == {}  # static keys: no provider calls anything
    (label, entry), *_ = found("outer").items()
    assert (label, entry["url"], entry["source"]) == (
        "sts eu-west-1 (credentials)",
        "https://sts.eu-west-1.amazonaws.com",
        "AWS default",
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "https://127.0.0.1:8443")
    assert found("hub")["sts us-east-1 (credentials)"]["source"] == "AWS_ENDPOINT_URL_STS"


@pytest.mark.parametrize("command", ["hold", "report"])
def test_an_s3_state_or_records_commands_assume_role_over_plain_http_is_refused(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lookups: list[str], command: str
) -> None:
    """The S3 state's own client (fleet/aws/s3.py) resolves the profile's credentials too: the state commands and
    `report s3://` never open the hub, so they check the credential endpoints themselves (issue 25 item 4)."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(profiles(tmp_path, ROLE)))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://sts.invalid")
    where = ["--endpoint-url", box.endpoint, "--profile", "hub", "--state-region", "us-east-1"]
    if command == "hold":
        cli = ["hold", "s3://fleet-state/unencrypted/state.sqlite", "--reason", "incident", *where]
    else:
        cli = ["report", "s3://fleet-state/unencrypted/prod.csv", *where]
    calls = dict(box.state.calls)
    result = CliRunner().invoke(main, cli)
    assert result.exit_code == 2, result.output
    assert "endpoint http://sts.invalid for sts us-east-1 (credentials)" in result.output, result.output
    assert "unencrypted" in result.output
    assert lookups == [] and not box.state.assume_role_calls and box.state.calls == calls
