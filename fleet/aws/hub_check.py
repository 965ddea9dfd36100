"""The hub first: confirm the calling identity with STS GetCallerIdentity before any account is touched.

A run that cannot be who it should be (no credentials, an unknown profile, an expired SSO session, an endpoint
out of reach, keys that STS rejects) stops here with one line that names the cause and the fix, before the
checkpoint is opened, so the next good run proceeds as if this one never happened.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterable
from typing import Any

import anyio
import botocore.exceptions as bce

from fleet.aws.calls import Calls
from fleet.aws.credentials import AwsSettings, Hub
from fleet.aws.endpoints import summary
from fleet.aws.retry import classify, connection_errors
from fleet.errors import FleetError, HubUnavailable


@contextlib.asynccontextmanager
async def checked_hub(settings: AwsSettings, calls: Calls, regions: Iterable[str] = ()) -> AsyncIterator[Hub]:
    """The hub, open and its identity confirmed (``hub.arn``); HubUnavailable (one line) otherwise. The clients of
    ``regions`` are created first: an endpoint in clear text is refused before any connection (InsecureEndpoint).
    Its calls (this check, AssumeRole) go through ``calls``: built by ``fleet.aws.runtime``."""
    from fleet.events import get_logger

    endpoint = settings.endpoint_url or f"https://sts.{settings.sts_region}.amazonaws.com"
    hub: Hub | None = None
    try:
        hub = Hub(settings, calls)
        await hub.__aenter__()
    except Exception as exc:
        if hub is not None:
            await hub.__aexit__(None, None, None)
        if isinstance(exc, FleetError):  # an endpoint refused (InsecureEndpoint): its own line
            raise
        raise HubUnavailable(explain(exc, settings, endpoint)) from None
    try:
        endpoint = hub.endpoints[("sts", settings.sts_region)].url  # where STS really is (any configuration)
        await hub.prepare(regions)
        try:
            # A silent endpoint (connects, never answers) would otherwise hold the run for the read timeout.
            with anyio.fail_after(2 * settings.connect_timeout):
                hub.arn = str((await caller_identity(hub.sts, calls))["Arn"])
        except TimeoutError:
            raise HubUnavailable(
                f"hub: STS at {endpoint} did not answer within {2 * settings.connect_timeout:g} s; check "
                "--endpoint-url, the network and any proxy (HTTPS_PROXY)"
            ) from None
        except Exception as exc:
            raise HubUnavailable(explain(exc, settings, endpoint)) from None
        get_logger().info("hub_identity", arn=hub.arn, endpoint=endpoint, endpoints=summary(hub.endpoints))
        yield hub
    finally:
        await hub.__aexit__(None, None, None)


def _profile(settings: AwsSettings) -> str | None:
    return settings.profile or os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE")


def _config_files() -> str:
    config = os.environ.get("AWS_CONFIG_FILE", "~/.aws/config")
    credentials = os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")
    return f"{credentials} and {config}"


def explain(exc: BaseException, settings: AwsSettings, endpoint: str) -> str:
    """One line for the operator: what stopped the hub check, and what to do. Never a secret."""
    cause = exc.__cause__ if isinstance(exc, _StsUnreachable) and exc.__cause__ is not None else exc
    profile = _profile(settings)
    fix_profile = f"--profile {profile}" if profile else "--profile P"
    if isinstance(cause, bce.ProfileNotFound):
        return (
            f"hub: the AWS profile {profile!r} is not defined in {_config_files()}; "
            f"add it (aws configure --profile {profile}) or pass the name of an existing one with --profile"
        )
    if isinstance(cause, bce.SSOTokenLoadError | bce.UnauthorizedSSOTokenError | bce.TokenRetrievalError):
        return f"hub: the SSO session is missing or expired ({cause}); run: aws sso login {fix_profile}"
    if isinstance(cause, bce.NoCredentialsError):
        where = f"profile {profile!r}" if profile else "no profile (neither --profile nor AWS_PROFILE is set)"
        return (
            "hub: no AWS credentials found; looked in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            f"{where} in {_config_files()}, SSO, container and instance metadata; "
            f"export keys, pass {fix_profile}, or run: aws sso login {fix_profile}"
        )
    if isinstance(cause, bce.PartialCredentialsError | bce.CredentialRetrievalError):
        return f"hub: the credentials could not be loaded ({cause}); fix the {_where(profile)}"
    if isinstance(cause, bce.SSLError):
        return (
            f"hub: TLS verification of {endpoint} failed ({_reason(cause)}); if the endpoint uses a private CA, "
            "point AWS_CA_BUNDLE (or the profile's ca_bundle) at it"
        )
    if isinstance(exc, _StsUnreachable) or isinstance(cause, bce.ConnectionError):
        return (
            f"hub: cannot reach STS at {endpoint} ({_reason(cause)}); check --endpoint-url, the network and any "
            "proxy (HTTPS_PROXY)"
        )
    if isinstance(cause, ValueError) and "endpoint" in str(cause).lower():
        return f"hub: {cause}; --endpoint-url takes a URL such as https://sts.us-east-1.amazonaws.com"
    failure = classify(cause)
    if failure.code in _REJECTED:
        return (
            f"hub: STS rejected the hub credentials ({failure.code}: {failure.message}); check the access key "
            f"and secret (or refresh the session: aws sso login {fix_profile})"
        )
    if failure.code in _EXPIRED:
        return f"hub: the hub's session token has expired ({failure.code}); refresh it (aws sso login {fix_profile})"
    return f"hub: the calling identity could not be confirmed ({failure.code}: {failure.message})"


def _where(profile: str | None) -> str:
    return f"profile {profile!r} in {_config_files()}" if profile else "AWS_* environment variables"


_REJECTED = frozenset(
    {"SignatureDoesNotMatch", "InvalidClientTokenId", "UnrecognizedClientException", "IncompleteSignature"}
)
_EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


class _StsUnreachable(Exception):
    """The STS endpoint could not be reached: not retried, so a dead endpoint fails within the connect timeout."""


class _FailFast:
    """The hub's STS client for GetCallerIdentity, whose failed connection is final: an unreachable endpoint is
    named at once (not retried, nor waited out by the outage gate), so a dead endpoint fails within the connect
    timeout."""

    def __init__(self, sts: Any) -> None:
        self._sts, self.meta = sts, sts.meta

    async def get_caller_identity(self) -> Any:
        try:
            return await self._sts.get_caller_identity()
        except connection_errors() as exc:
            raise _StsUnreachable(str(exc)) from exc


async def caller_identity(sts: Any, calls: Calls) -> dict[str, Any]:
    """GetCallerIdentity through the job's calls: throttles and 5xx are retried; a connection that fails is final at
    once. It goes even if the job is already stopping (it sends nothing in any account)."""
    return dict(await calls.call(_FailFast(sts), "GetCallerIdentity", None, "hub", despite_stop=True))
