"""The endpoint in plain sight (issue 21): every client's real endpoint and its source are logged, and plain HTTP
to another machine is refused before any connection."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
from botocore.configprovider import ConfiguredEndpointProvider
from click.testing import CliRunner

from fleet.aws.endpoints import Endpoint, InsecureEndpoint, require_encryption
from fleet.cli import main

from ..conftest import Fleet
from ..files import events


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def one(text: str, name: str) -> dict[str, object]:
    found = [e for e in events(text) if e["event"] == name]
    assert len(found) == 1, text
    return found[0]


def run_args(fleet: Fleet, *more: str) -> list[str]:
    return ["run", str(fleet.manifest), "--checkpoint", str(fleet.checkpoint), "--no-progress", *more]


def test_an_endpoint_from_the_environment_is_named_in_hub_identity_and_run_started(
    make_fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("eu-west-1",), per_region=1)
    monkeypatch.setenv("AWS_ENDPOINT_URL", fleet.box.endpoint)  # no --endpoint-url: botocore's own setting
    code, out = invoke(*run_args(fleet))
    assert code == 0, out
    trust = f"{os.environ['AWS_CA_BUNDLE']} (AWS_CA_BUNDLE)"  # the sandbox's CA (conftest)
    expected = {
        "sts us-east-1": {"url": fleet.box.endpoint, "source": "AWS_ENDPOINT_URL", "ca_bundle": trust},
        "cognito-idp eu-west-1": {"url": fleet.box.endpoint, "source": "AWS_ENDPOINT_URL", "ca_bundle": trust},
        "acm us-east-1": {"url": fleet.box.endpoint, "source": "AWS_ENDPOINT_URL", "ca_bundle": trust},
    }
    hub = one(out, "hub_identity")
    assert hub["endpoint"] == fleet.box.endpoint and hub["endpoints"] == expected
    started = one(out, "run_started")
    assert started["endpoints"] == expected
    assert fleet.box.state.writes  # and the run went there


def test_service_variables_and_a_profile_are_named_too(
    make_fleet, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("eu-west-1",), per_region=1)
    config = tmp_path / "config"
    keys = "".join(f"{k.lower()} = {os.environ[k]}\n" for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
    config.write_text(f"[profile hub]\nendpoint_url = {fleet.box.endpoint}\n{keys}")  # the sandbox hub's keys
    config.chmod(0o600)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", fleet.box.endpoint)
    code, out = invoke("plan", str(fleet.manifest), "--profile", "hub", "--no-progress")
    assert code == 0, out
    endpoints = one(out, "run_started")["endpoints"]
    trust = f"{os.environ['AWS_CA_BUNDLE']} (AWS_CA_BUNDLE)"
    assert endpoints == {
        "sts us-east-1": {"url": fleet.box.endpoint, "source": "AWS_ENDPOINT_URL_STS", "ca_bundle": trust},
        "cognito-idp eu-west-1": {"url": fleet.box.endpoint, "source": "profile hub: endpoint_url", "ca_bundle": trust},
        "acm us-east-1": {"url": fleet.box.endpoint, "source": "profile hub: endpoint_url", "ca_bundle": trust},
    }


def test_the_default_is_named_as_aws_default(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("eu-west-1",), per_region=1)
    code, out = invoke(*run_args(fleet, "--endpoint-url", fleet.box.endpoint))
    assert code == 0, out
    assert {e["source"] for e in one(out, "run_started")["endpoints"].values()} == {"--endpoint-url"}  # type: ignore[attr-defined]


def test_plain_http_to_another_machine_is_refused_before_any_connection(make_fleet, monkeypatch) -> None:
    # Another machine, by a name that never resolves (.invalid): whether the tool tried to reach it shows in the
    # name lookups it made. No traffic leaves loopback (a listener on this machine's own interface address would be
    # a private-range target).
    fleet: Fleet = make_fleet(accounts=1, regions=("eu-west-1",), per_region=1)
    host = "cognito-fleet-test.invalid"
    url = f"http://{host}:8080"
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def recording(name: Any, *args: Any, **kwargs: Any) -> Any:
        text = name.decode() if isinstance(name, bytes) else str(name or "")
        if text == host:
            looked_up.append(text)
            raise socket.gaierror(socket.EAI_NONAME, "no such host (test)")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    code, out = invoke(*run_args(fleet, "--endpoint-url", url))
    assert code == 2, out
    error = one(out, "error")
    assert "unencrypted" in str(error["message"]) and url in str(error["message"]) and "--insecure-endpoint" in out
    assert "hub_identity" not in out and "run_started" not in out
    assert looked_up == []  # refused before any connection: the name was not even looked up
    # --insecure-endpoint: the operator's choice; the run goes on to reach it (and finds no such host).
    code, out = invoke(*run_args(fleet, "--endpoint-url", url, "--insecure-endpoint"))
    assert code == 2 and "unencrypted" not in out and "hub:" in out, out
    assert looked_up, "this time it tried to connect"
    assert fleet.box.state.writes == {} and not fleet.checkpoint.exists()


def test_a_plain_http_service_endpoint_from_the_environment_is_refused_too(
    make_fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("eu-west-1",), per_region=1)
    monkeypatch.setenv("AWS_ENDPOINT_URL", fleet.box.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", "http://cognito.example.com")
    fleet.box.state.reset_counters()
    code, out = invoke(*run_args(fleet))
    assert code == 2 and "cognito-idp eu-west-1" in out and "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER" in out, out
    assert fleet.box.state.calls == {} and not fleet.box.state.assume_role_calls  # not even STS was called


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://sts.us-east-1.amazonaws.com", True),
        ("http://127.0.0.1:5000", True),
        ("http://127.8.9.1:5000", True),
        ("http://localhost:5000", True),
        ("http://[::1]:5000", True),
        ("http://10.0.0.5:5000", False),
        ("http://sts.example.com", False),
        ("HTTP://sts.example.com", False),
    ],
)
def test_plain_http_is_allowed_on_loopback_only(url: str, allowed: bool) -> None:
    endpoint = Endpoint("sts", "us-east-1", url, "--endpoint-url")
    if allowed:
        require_encryption(endpoint, allow_plain_http=False)
    else:
        with pytest.raises(InsecureEndpoint) as caught:
            require_encryption(endpoint, allow_plain_http=False)
        assert caught.value.exit_code == 2
        require_encryption(endpoint, allow_plain_http=True)


def test_botocore_endpoint_provider_keeps_the_shape_fleet_endpoints_reads() -> None:
    """fleet/aws/endpoints.py reads botocore's private ConfiguredEndpointProvider: fail loudly if it changes."""
    assert ConfiguredEndpointProvider._ENDPOINT_URL_LOOKUP_ORDER == [
        "environment_service",
        "environment_global",
        "config_service",
        "config_global",
    ]
    provider = ConfiguredEndpointProvider(full_config={}, scoped_config={}, client_name="cognito-idp", environ={})
    assert provider._get_service_env_var_name() == "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER"
    for location in ConfiguredEndpointProvider._ENDPOINT_URL_LOOKUP_ORDER:
        assert getattr(provider, f"_get_endpoint_url_{location}")() is None
